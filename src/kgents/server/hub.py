"""What `kgents serve` serves: one opened stack (store, relay side, index, Spark) shared by every persona's memory.

On the embedded default the server owns the index, so it also runs the relay in-process (a background task that
drains what other processes wrote, e.g. `kgents garden plant`); with the real triad it keeps no state of its own
beyond connection pools, and any number of servers and `kgents synapse run` relays may run beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp

from kgents.config import Settings, check_persona
from kgents.errors import ValidationError
from kgents.health.collect import collect_health
from kgents.health.levels import Thresholds
from kgents.health.model import PartHealth, TriadHealth
from kgents.health.probes import reflex_part, reflex_unconfigured, synapse_part
from kgents.health.served import served_durability, served_resonance
from kgents.memory.api import MemoryAPI
from kgents.memory.forget import ForgetReport, forget_on
from kgents.memory.local import AsyncMemory
from kgents.server.auth import Grant, ReadOnlyMemory, current_grant
from kgents.server.tokens import Tokens, tokens_on
from kgents.soul.session import open_spark
from kgents.soul.spark import SparkStore
from kgents.synapse.metrics import SynapseMetrics, collect_metrics
from kgents.synapse.relay import Relay, RelayConfig
from kgents.synapse.runtime import Synapse, open_synapse

log = logging.getLogger("kgents.server")

RELAY_CONFIG = RelayConfig(lease_s=30.0, poll_interval_s=0.25, idle_poll_s=0.25)
"""The in-process relay of an embedded server: it polls the SQLite outbox (no NOTIFY there) for what other
processes wrote; the memories it serves index their own writes inline, so it need not poll fast."""


class MemoryHub:
    """One stack, many personas: `memory(persona)` is that persona's `AsyncMemory` over the shared stack."""

    def __init__(self, settings: Settings, synapse: Synapse, spark: SparkStore) -> None:
        self.settings = settings
        self.synapse = synapse
        self.spark = spark
        self._memories: dict[str, AsyncMemory] = {}
        self._relay: Relay | None = None
        self._relay_task: asyncio.Task[None] | None = None
        self.tokens = Tokens(tokens_on(synapse.store.anchor))

    @classmethod
    async def open(cls, settings: Settings) -> MemoryHub:
        synapse = await open_synapse(settings)
        try:
            spark = await open_spark(settings)
        except BaseException:
            await synapse.close()
            raise
        return cls(settings, synapse, spark)

    @property
    def relaying(self) -> bool:
        """True on the embedded index: this server is its one owner, so it relays too."""
        return self.synapse.in_process

    async def memory(self, persona: str) -> MemoryAPI:
        found = self._memories.get(persona)
        if found is None:  # no await between the look-up and the insert: one memory per persona
            found = AsyncMemory.shared(self.synapse, self.spark, check_persona(persona))
            self._memories[persona] = found
        return found

    async def ready(self) -> dict[str, Any]:
        """Raises unless the anchor and the index both answer."""
        pending = await self.synapse.queue.queue_depth(1)
        await self.synapse.index.collections()
        return {"anchor": self.synapse.queue.backend, "index": self.synapse.index.backend, "pending": pending > 0}

    async def operator(self, action: str, persona: str | None, options: Mapping[str, Any]) -> dict[str, Any]:
        if action == "coherency":  # by bucket (what changed since the last measurement), or in full when asked
            report = await self.synapse.coherency_figure(persona, full=bool(options.get("full")))
            return {"coherency": report, "index": (await self.synapse.refresh_state()).to_dict()}
        if action == "index":
            return await self.synapse.index_status()
        if action == "reconcile":
            return (await self.synapse.reconcile()).to_dict()
        if action == "reindex":  # the relays and this server's faces write both collections until the switch
            embedder = options.get("embedder") or self.synapse.state.active.embedder
            if not isinstance(embedder, str):
                raise ValidationError("embedder must be a name")
            return (await self.synapse.reindex(embedder)).to_dict()
        if action == "build":  # the index's graph: built (or awaited) by the process that holds the index
            graph = await self.synapse.build_graph(now=bool(options["now"]), timeout_s=float(options["wait"]))
            return {"graph": None if graph is None else graph.to_dict()}
        if action == "dream":  # the persona's dream, in the process that holds the index
            from kgents.hypnagogia.run import serve_dream

            if persona is None:
                raise ValidationError("a dream is one persona's: name it")

            return await serve_dream(await self.memory(persona), options)
        raise ValidationError(f"unknown operator action {action!r}")

    async def forget(self, persona: str, *, purge_history: bool) -> ForgetReport:
        """Remove `persona` everywhere it lives (`kgents forget --persona` beside this server)."""
        persona = check_persona(persona)
        self._memories.pop(persona, None)  # not closed: a shared memory holds nothing, and others may hold it
        return await forget_on(self.synapse, self.spark, persona, purge_history=purge_history)

    async def health(self) -> TriadHealth:
        """Health served here (`kgents.health.served`): the last figures over this server's own pool and index,
        with their age; no full measurement, no new pool or connection, no write."""
        figures = asyncio.ensure_future(collect_metrics(self.synapse.queue, purge=False))

        async def relay_figures() -> SynapseMetrics:
            return await asyncio.shield(figures)  # read once, by the two parts that use it

        async def durability(settings: Settings, t: Thresholds) -> PartHealth:
            return await served_durability(self.synapse, settings, t, await relay_figures())

        async def resonance(settings: Settings, t: Thresholds) -> PartHealth:
            return await served_resonance(self.synapse, settings, t)

        async def synapse(settings: Settings, t: Thresholds) -> PartHealth:
            return synapse_part(await relay_figures(), settings, t)

        async def reflex(settings: Settings, t: Thresholds) -> PartHealth:  # this server's own Spark
            return await reflex_part(self.spark, settings, t) if settings.redis_url else reflex_unconfigured()

        probes = {"durability": durability, "resonance": resonance, "reflex": reflex, "synapse": synapse}
        try:
            return await collect_health(self.settings, probes=probes, drain=False)
        finally:
            if not figures.done():
                figures.cancel()

    async def persona_grant(self, token: str) -> Grant | None:
        record = await self.tokens.verify(token)
        return None if record is None else Grant(record.persona, record.read_only, record.id)

    async def granted_memory(self) -> MemoryAPI:
        """The memory the request's token opens for MCP: a persona token's own persona (read-only tokens: writes
        refused), else the server's own persona (`--persona` / KGENTS_PERSONA)."""
        grant = current_grant.get()
        if grant is None or grant.operator:
            return await self.memory(self.settings.persona)
        assert grant.persona is not None
        memory = await self.memory(grant.persona)
        return ReadOnlyMemory(memory) if grant.read_only else memory

    def mounts(self) -> dict[str, ASGIApp]:
        """The MCP app at /mcp: the memory the request's token opens (`granted_memory`); no tool can name
        another persona."""
        from kgents.server.mcp import build_mcp_app

        app: ASGIApp = build_mcp_app(self.granted_memory)
        return {"/mcp": app}

    # -- the in-process relay (embedded default) ---------------------------------------------------------------
    def start_relay(self) -> None:
        if not self.relaying or self._relay_task is not None:
            return
        self._relay = self.synapse.relay(RELAY_CONFIG)
        self._relay.stats.mode = "server"
        self._relay_task = asyncio.create_task(self._relay.run(), name="kgents-relay")

    @property
    def relayed(self) -> int:
        """Outbox events the in-process relay completed."""
        return 0 if self._relay is None else self._relay.stats.processed

    def stop_relay(self) -> None:
        """Ask the relay to stop after the batch in flight (safe from a signal handler)."""
        if self._relay is not None:
            self._relay.stop()

    async def close(self) -> None:
        self.stop_relay()
        try:
            if self._relay_task is not None:
                try:
                    await self._relay_task
                except Exception:
                    log.exception("the in-process relay failed")
            for memory in self._memories.values():
                await memory.close()
        finally:
            try:
                with contextlib.suppress(Exception):
                    await self.spark.close()
            finally:
                await self.synapse.close()

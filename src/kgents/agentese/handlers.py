"""The registered AGENTESE paths: the triad's vitals (self.vitals.triad.*), the database (world.database.*) and
drift over time (time.drift.*). Handlers return model objects (TriadHealth, PartHealth) or JSON-ready dicts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from kgents.agentese.resolver import AgentContext, Args, Registry
from kgents.clock import utcnow
from kgents.errors import ValidationError
from kgents.garden.records import OutboxEvent
from kgents.garden.store import GardenStore, open_store
from kgents.health.collect import collect_health, default_probes
from kgents.health.model import PARTS, PartHealth, TriadHealth
from kgents.synapse.drift import read_history
from kgents.synapse.queue import queue_on

if TYPE_CHECKING:
    from kgents.memory.remote import RemoteMemory
    from kgents.synapse.runtime import Synapse

T = TypeVar("T")

REGISTRY = Registry()


async def triad_health(ctx: AgentContext) -> TriadHealth:
    """Through this home's server when one runs (it owns the embedded index and measures it), else here."""
    served = await _served_health(ctx)
    if served is not None:
        return served
    return await collect_health(ctx.settings, ctx.thresholds, record=ctx.record)


async def _served_health(ctx: AgentContext) -> TriadHealth | None:
    import asyncio

    from kgents.home.discovery import find_server

    info = await asyncio.to_thread(find_server, ctx.settings)
    if info is None:
        return None
    from kgents.memory.remote import RemoteMemory

    async with RemoteMemory(info, ctx.settings.persona) as remote:
        return TriadHealth.from_dict(await remote.call("GET", "/health", absolute=True))


async def part_health(ctx: AgentContext, name: str) -> PartHealth:
    served = await _served_health(ctx)
    if served is not None and (part := served.part(name)) is not None:
        return part
    probes = default_probes(record=ctx.record)
    health = await collect_health(ctx.settings, ctx.thresholds, probes={name: probes[name]})
    found = health.part(name)
    assert found is not None  # collect_health returns one part per probe
    return found


@REGISTRY.register("self.vitals.triad.health", "every part's level and the verdict, with its reason")
async def _health(ctx: AgentContext, args: Args) -> TriadHealth:
    return await triad_health(ctx)


def _part_handler(name: str) -> None:
    async def handler(ctx: AgentContext, args: Args) -> PartHealth:
        return await part_health(ctx, name)

    REGISTRY.register(f"self.vitals.triad.{name}", f"the {name} part: level, reason, figures")(handler)


for _name in PARTS:
    _part_handler(_name)


@REGISTRY.register("self.vitals.triad.coherency", "the index measured against the anchor, now")
async def _coherency(ctx: AgentContext, args: Args) -> dict[str, Any]:
    return _coherency_view(await part_health(ctx, "resonance"))


def _coherency_view(part: PartHealth) -> dict[str, Any]:
    keys = ("coherency_with_truth", "matched", "stale", "missing", "orphaned", "total", "measured_by", "age_s")
    return {"level": part.level.value, "reason": part.reason, **{k: part.figures.get(k) for k in keys}}


@asynccontextmanager
async def _store(ctx: AgentContext) -> AsyncIterator[GardenStore]:
    store = await open_store(ctx.settings)
    try:
        yield store
    finally:
        await store.close()


@REGISTRY.register("world.database.garden.count", "this persona's entries")
async def _garden_count(ctx: AgentContext, args: Args) -> dict[str, Any]:
    async with _store(ctx) as store:
        return {"persona": ctx.settings.persona, "count": await store.count(ctx.settings.persona)}


@REGISTRY.register("world.database.garden.search", "this persona's entries containing TEXT (limit=N)")
async def _garden_search(ctx: AgentContext, args: Args) -> dict[str, Any]:
    from kgents.garden.filters import EntryFilter
    from kgents.garden.records import GardenQuery

    text = args.text
    if not text:
        raise ValidationError("world.database.garden.search needs some text")
    page = GardenQuery(limit=args.integer("limit", 10))
    async with _store(ctx) as store:
        entries = await store.query(ctx.settings.persona, EntryFilter(text=text), page)
    return {"persona": ctx.settings.persona, "text": text, "entries": [e.to_dict() for e in entries]}


@REGISTRY.register("world.database.garden.status", "the anchor: backend, schema version, entries, personas")
async def _garden_status(ctx: AgentContext, args: Args) -> dict[str, Any]:
    async with _store(ctx) as store:
        return {
            "anchor": ctx.settings.describe_anchor(),
            "backend": store.backend,
            "schema_version": await store.schema_version(),
            "persona": ctx.settings.persona,
            "entries": await store.count(ctx.settings.persona),
            "personas": len(await store.personas()),
        }


@REGISTRY.register("world.database.outbox.count", "pending CDC events (every persona)")
async def _outbox_count(ctx: AgentContext, args: Args) -> dict[str, Any]:
    async with _store(ctx) as store:
        return {"pending": await store.outbox_depth()}


@REGISTRY.register("world.database.outbox.search", "this persona's pending events, oldest first (limit=N)")
async def _outbox_search(ctx: AgentContext, args: Args) -> dict[str, Any]:
    async with _store(ctx) as store:
        events = await store.outbox_peek(ctx.settings.persona, args.integer("limit", 20))
    return {"persona": ctx.settings.persona, "events": [_event(e) for e in events]}


def _event(event: OutboxEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "entry_id": str(event.entry_id),
        "operation": event.operation.value,
        "entry_version": event.entry_version,
        "created_at": event.created_at.isoformat(),
        "attempts": event.attempts,
    }


@REGISTRY.register("world.database.outbox.status", "queue depth, oldest pending age, dead letters")
async def _outbox_status(ctx: AgentContext, args: Args) -> dict[str, Any]:
    from kgents.synapse.metrics import QUEUE_DEPTH_CAP

    async with _store(ctx) as store:
        anchor = queue_on(store.anchor)
        oldest = await anchor.oldest_pending()
        return {
            "pending": await anchor.queue_depth(QUEUE_DEPTH_CAP),
            "oldest_pending_s": None if oldest is None else max(0.0, (utcnow() - oldest).total_seconds()),
            "dead_letters": await anchor.dead_letter_count(),
        }


async def _on_index(
    ctx: AgentContext,
    here: Callable[[Synapse], Awaitable[T]],
    served: Callable[[RemoteMemory], Awaitable[T]],
) -> T:
    """`served` through this home's server when one runs (it owns the embedded index), else `here` on the stack
    opened in this process (caught up first); while another process owns the embedded index, wait for it."""
    from kgents.home.discovery import ServerInfo
    from kgents.home.owner import server_or_own
    from kgents.synapse.runtime import open_synapse

    opened = await server_or_own(ctx.settings, lambda: open_synapse(ctx.settings), progress=ctx.progress)
    if isinstance(opened, ServerInfo):
        from kgents.memory.remote import RemoteMemory

        async with RemoteMemory(opened, ctx.settings.persona) as remote:
            return await served(remote)
    try:
        if opened.in_process:
            await opened.catch_up(ctx.thresholds.probe_timeout_s)
        return await here(opened)
    finally:
        await opened.close()


async def _index_status(ctx: AgentContext) -> dict[str, Any]:
    async def served(remote: RemoteMemory) -> dict[str, Any]:
        return await remote.synapse_index()

    return await _on_index(ctx, lambda s: s.index_status(), served)


@REGISTRY.register("world.database.index.count", "points in the active collection (every persona)")
async def _index_count(ctx: AgentContext, args: Args) -> dict[str, Any]:
    status = await _index_status(ctx)
    return {"collection": status["collection"], "points": status["points"]}


@REGISTRY.register("world.database.index.search", "this persona's memory recalled for TEXT (limit=N)")
async def _index_search(ctx: AgentContext, args: Args) -> dict[str, Any]:
    from kgents.synapse.hit import RecallHit

    text = args.text
    if not text:
        raise ValidationError("world.database.index.search needs some text")
    limit = args.integer("limit", 10)

    async def here(s: Synapse) -> list[RecallHit]:
        return await s.recall().recall(ctx.settings.persona, text, limit)

    async def served(remote: RemoteMemory) -> list[RecallHit]:
        return await remote.recall(text, limit=limit, explain=True)  # the ranks, as the walk here gives them

    hits = await _on_index(ctx, here, served)
    return {"persona": ctx.settings.persona, "text": text, "hits": [h.to_dict() for h in hits]}


@REGISTRY.register("world.database.index.status", "the index: location, collection, embedder, points")
async def _index_status_path(ctx: AgentContext, args: Args) -> dict[str, Any]:
    return await _index_status(ctx)


@REGISTRY.register("time.drift.coherency", "coherency measured now (and appended to the drift history)")
async def _drift_coherency(ctx: AgentContext, args: Args) -> dict[str, Any]:
    recording = AgentContext(ctx.settings, ctx.thresholds, ctx.record or "invoke")
    return _coherency_view(await part_health(recording, "resonance"))


@REGISTRY.register("time.drift.lag", "the relay's lag: queue depth, oldest pending age, p50/p95, heartbeat age")
async def _drift_lag(ctx: AgentContext, args: Args) -> dict[str, Any]:
    part = await part_health(ctx, "synapse")
    keys = ("pending_events", "oldest_pending_s", "lag_p50_ms", "lag_p95_ms", "heartbeat_age_s", "relays_alive")
    return {"level": part.level.value, "reason": part.reason, **{k: part.figures.get(k) for k in keys}}


@REGISTRY.register("time.drift.history", "the rolling coherency and lag samples, oldest first (limit=N)")
async def _drift_history(ctx: AgentContext, args: Args) -> dict[str, Any]:
    async with _store(ctx) as store:
        samples = await read_history(store.anchor, args.integer("limit", 20))
    return {"samples": [s.to_dict() for s in samples]}

"""Opening the whole relay stack from settings: the garden store, its relay adapter, the vector index, the
embedders and the index state. The CLI, the bench and other capabilities (health, demo) start here.

In-process mode: the embedded index (qdrant-edge) has one owning process, so on the embedded default the
command that opened it drains the outbox itself (`Synapse.drain`) before it reads; `kgents synapse run` is the
long-running relay for any backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kgents.breaker import BreakerState
from kgents.config import Settings
from kgents.garden.store import GardenStore, open_store
from kgents.resonance.embedders import DEFAULT_EMBEDDER
from kgents.resonance.protocols import Embedder, GraphBuilder, IndexGraph, VectorIndex
from kgents.synapse.adopt import AdoptReport, adopt
from kgents.synapse.coherency import CoherencyReport, ReconcileReport, measure, reconcile
from kgents.synapse.coherency_buckets import measure_changed, measure_full
from kgents.synapse.metrics import QUEUE_DEPTH_CAP, SynapseMetrics, collect_metrics
from kgents.synapse.queue import RelayQueue, queue_on
from kgents.synapse.rebuild import refill_rebuilt
from kgents.synapse.recall import HybridRecall
from kgents.synapse.records import IndexState
from kgents.synapse.reindex import ReindexReport, reindex
from kgents.synapse.relay import Relay, RelayConfig
from kgents.synapse.retention import Retention
from kgents.synapse.state import check_embedder, collection_prefix, ensure_state

IN_PROCESS_LEASE_S = 5.0
"""Short leases for in-process drains: only the index's owner can relay, so a lease only guards against a crash."""
IN_PROCESS_BEAT_S = 1.0
"""An in-process drain writes its heartbeat (and adds to the anchor's totals) at least this often."""
CATCH_UP_POLL_S = 0.05
"""While events are pending but none is claimable (a retry's backoff, another relay's lease), look again after
this long."""


@dataclass(frozen=True, slots=True)
class DrainResult:
    """What an in-process drain did: events completed, and events still in the outbox when it stopped."""

    completed: int
    pending: int

    @property
    def caught_up(self) -> bool:
        return self.pending == 0

    def to_dict(self) -> dict[str, int]:
        return {"completed": self.completed, "pending": self.pending}


def configured_embedder(settings: Settings) -> str | None:
    """The embedder the user asked for (KGENTS_EMBEDDER), None when left to the default."""
    return settings.embedder


def _default_loader(name: str) -> Embedder:
    from kgents.resonance import embedders

    return embedders.open_embedder(name)


async def _default_index(settings: Settings) -> VectorIndex:
    from kgents.resonance.factory import open_index

    return open_index(settings)


@dataclass
class EmbedderCache:
    """Resolve embedder names once per process (loading a model is the expensive part)."""

    loader: Callable[[str], Embedder] = _default_loader
    known: dict[str, Embedder] = field(default_factory=dict)

    def __call__(self, name: str) -> Embedder:
        if name not in self.known:
            self.known[name] = self.loader(name)
        return self.known[name]


@dataclass
class Synapse:
    settings: Settings
    store: GardenStore
    queue: RelayQueue
    index: VectorIndex
    embedders: EmbedderCache
    state: IndexState
    prefix: str
    _relay: Relay | None = field(default=None, repr=False)

    @property
    def in_process(self) -> bool:
        """True on the embedded index: no other process can relay for us."""
        return self.index.backend == "edge"

    def relay(self, config: RelayConfig | None = None) -> Relay:
        return Relay(self.queue, self.index, self.embedders, config, retention=Retention.of(self.settings))

    def recall(self) -> HybridRecall:
        return HybridRecall(self.store, self.queue, self.index, self.embedders, state=self.current_state)

    async def current_state(self) -> IndexState:
        """The index state a read should use. The embedded index has one owner, this process, so no one else
        can switch its collection: the state read at open (and after this process's own reindex) holds. On the
        real triad a reindex elsewhere may switch it: read again."""
        return self.state if self.in_process else await self.refresh_state()

    def in_process_relay(self) -> Relay:
        """This process's own relay (one per Synapse, so its counters add up across drains)."""
        if self._relay is None:
            config = RelayConfig(lease_s=IN_PROCESS_LEASE_S, heartbeat_interval_s=IN_PROCESS_BEAT_S)
            self._relay = self.relay(config)
            self._relay.stats.mode = "in-process"
        return self._relay

    async def drain(self, timeout_s: float = 60.0, *, until_empty: bool = False) -> DrainResult:
        """Apply pending outbox events in this process (the embedded default's in-process relay) until nothing
        is claimable, or with `until_empty` until the outbox is empty, or the deadline; the relay's heartbeat
        and the anchor's totals show the work (`synapse status`). Returns completed and still-pending counts."""
        relay = self.in_process_relay()
        deadline = time.monotonic() + timeout_s
        completed = 0
        try:
            while (left := deadline - time.monotonic()) > 0:
                done = await relay.drain(min(left, IN_PROCESS_BEAT_S))
                completed += done
                await relay.beats.beat()
                if relay.breaker.state is not BreakerState.CLOSED:
                    break  # the index is down: stop here, the pending count says how far behind it is
                if done == 0:  # nothing claimable now: stop, or wait for retries and leases to come due
                    if not until_empty or not await self.queue.queue_depth(1):
                        break
                    await asyncio.sleep(min(CATCH_UP_POLL_S, max(0.0, deadline - time.monotonic())))
        finally:  # counts of a drain cut short by an error still reach the totals
            with contextlib.suppress(Exception):
                await relay.beats.report()
        return DrainResult(completed, await self.queue.queue_depth(QUEUE_DEPTH_CAP))

    async def catch_up(self, timeout_s: float = 60.0) -> DrainResult:
        """Drain until the outbox is empty (or the deadline passed): `drain(until_empty=True)`."""
        return await self.drain(timeout_s, until_empty=True)

    async def refresh_state(self) -> IndexState:
        state = await self.queue.read_state()
        if state is not None:
            self.state = state
        return self.state

    async def coherency(self, sample_persona: str | None = None) -> CoherencyReport:
        """Measured now, over every persona; sample ids only of `sample_persona` (None: the settings' persona)."""
        persona = sample_persona or self.settings.persona
        return await measure(self.queue, self.index, (await self.refresh_state()).active, persona)

    async def coherency_figure(self, sample_persona: str | None = None, *, full: bool = False) -> dict[str, Any]:
        """Measured now: by bucket (only what changed since the last measurement is read), or every (id,
        version) of both sides with `full` (sample ids only then, of `sample_persona`)."""
        target = (await self.refresh_state()).active
        persona = sample_persona or self.settings.persona
        if full:
            measured = await measure_full(self.queue, self.index, target, persona)
        else:
            measured = await measure_changed(self.queue, self.index, target, persona)
        return measured.to_dict()

    async def metrics(self) -> SynapseMetrics:
        return await collect_metrics(self.queue)

    async def index_status(self) -> dict[str, Any]:
        """The index as `world.database.index.status` shows it: location, active collection, embedder, points."""
        state = await self.refresh_state()
        return {
            "backend": self.index.backend,
            "location": self.index.location,
            "collection": state.active.collection,
            "embedder": state.active.embedder,
            "points": await self.index.count(state.active.collection),
            "reindexing": None if state.pending is None else state.pending.collection,
            "graph": None if (graph := await self.graph()) is None else graph.to_dict(),
        }

    async def graph(self) -> IndexGraph | None:
        """The active collection's HNSW graph, where this process builds it (None: the index server builds its own)."""
        if not isinstance(self.index, GraphBuilder):
            return None
        return await self.index.graph(self.state.active.collection)

    async def build_graph(self, *, now: bool = True, timeout_s: float | None = None) -> IndexGraph | None:
        """Wait for the graph's build (first starting one if `now`), at most `timeout_s`: `GraphBuilder.build_graph`."""
        if not isinstance(self.index, GraphBuilder):
            return None
        return await self.index.build_graph(self.state.active.collection, now=now, timeout_s=timeout_s)

    async def reconcile(self) -> ReconcileReport:
        return await reconcile(self.queue, self.index, self.embedders, await self.refresh_state())

    async def reindex(self, embedder_name: str, progress: Callable[[int], None] | None = None) -> ReindexReport:
        embedder = self.embedders(embedder_name)
        report = await reindex(
            self.queue,
            self.index,
            embedder,
            self.embedders,
            await self.refresh_state(),
            self.prefix,
            progress,
            on_state=self._keep_state,
        )
        await self.refresh_state()
        return report

    def _keep_state(self, state: IndexState) -> None:
        self.state = state

    async def adopt(self) -> AdoptReport:
        """Rebuild this index from the anchor and make it the one the anchor feeds (see `synapse.adopt`)."""
        state = await self.refresh_state()
        report = await adopt(
            self.queue, self.index, self.embedders(state.active.embedder), self.embedders, state, self.prefix
        )
        await self.refresh_state()
        return report

    async def close(self) -> None:
        try:
            if self._relay is not None:  # its counts are in the totals; the heartbeat said it was draining
                with contextlib.suppress(Exception):
                    await self._relay.beats.report()
                    await self.queue.forget(self._relay.relay_id)
            await self.index.close()
        finally:
            await self.store.close()


async def open_synapse(
    settings: Settings,
    *,
    index: VectorIndex | None = None,
    embedders: EmbedderCache | None = None,
    store: GardenStore | None = None,
    adopting: bool = False,
    recreate: bool = False,
    reindexing: bool = False,
) -> Synapse:
    """Everything the relay, reconcile, reindex and search need, opened and checked (one-line errors).
    `adopting`: open over an index the anchor may not feed yet, only to `adopt()` it. A collection missing from
    the index is MissingCollectionError unless `recreate` (for reconcile and reindex). `reindexing`: a configured
    embedder the index was not built with is not an error (the reindex is what switches to it)."""
    own_store = store is None
    store = store or await open_store(settings)
    opened_index: Any = None
    try:
        opened_index = index or await _default_index(settings)
        queue = queue_on(store.anchor)
        embedders = embedders or EmbedderCache()
        configured = configured_embedder(settings)
        schema = settings.postgres_schema if settings.postgres_url else None
        prefix = collection_prefix(queue.backend, schema)
        existing = await queue.read_state()
        if existing is not None and not reindexing:
            check_embedder(existing, configured)
        embedder = embedders(existing.active.embedder if existing else configured or DEFAULT_EMBEDDER)
        if adopting and existing is not None:
            state = existing
        else:
            state = await ensure_state(queue, opened_index, embedder, prefix, recreate=recreate)
        synapse = Synapse(settings, store, queue, opened_index, embedders, state, prefix)
        await refill_rebuilt(synapse)  # a collection the index could not read, made again: refilled now
        return synapse
    except BaseException:
        if opened_index is not None and index is None:
            await opened_index.close()
        if own_store:
            await store.close()
        raise

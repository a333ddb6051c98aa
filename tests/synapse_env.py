"""One opened Synapse stack for a test: garden store, relay queue, a fault-injectable real index, a counting
embedder, the index state, and helpers to run relays and measure coherency."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from kgents.config import Settings
from kgents.garden.service import PersonaGarden
from kgents.garden.store import GardenStore, open_store
from kgents.resonance.edge import EdgeIndex
from kgents.resonance.embedders import DEFAULT_EMBEDDER, open_embedder
from kgents.resonance.protocols import Embedder, VectorIndex
from kgents.resonance.server import QdrantServerIndex
from kgents.synapse.coherency import CoherencyReport, measure
from kgents.synapse.queue import RelayQueue, queue_on
from kgents.synapse.recall import HybridRecall
from kgents.synapse.records import IndexState
from kgents.synapse.relay import Relay, RelayConfig
from kgents.synapse.state import collection_prefix, ensure_state
from tests.synapse_support import CountingEmbedder, FaultyIndex

FAST = RelayConfig(
    batch_size=64,
    lease_s=5.0,
    poll_interval_s=0.2,
    idle_poll_s=0.02,
    heartbeat_interval_s=0.2,
    max_attempts=3,
    backoff_base_s=0.02,
    backoff_cap_s=0.2,
    breaker_threshold=2,
    breaker_reset_s=0.2,
)


def base_embedder() -> Embedder:
    """The real default embedder."""
    return open_embedder(DEFAULT_EMBEDDER)


INDEX_KINDS = ["qdrant", "edge"]


async def open_inner_index(settings: Settings, kind: str = "qdrant") -> VectorIndex:
    """A real index: the server adapter over qdrant-client's in-process mode, or the embedded edge index under
    KGENTS_HOME."""
    if kind == "edge":
        return EdgeIndex.open(settings.home / "index")
    return QdrantServerIndex.in_memory()


@dataclass
class Env:
    settings: Settings
    store: GardenStore
    queue: RelayQueue
    index: FaultyIndex
    embedder: CountingEmbedder
    state: IndexState
    extra_embedders: dict[str, Embedder] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    relays: list[Relay] = field(default_factory=list)

    def garden(self, persona: str = "kent") -> PersonaGarden:
        return PersonaGarden(self.store, persona)

    def resolve(self, name: str) -> Embedder:
        if name == self.embedder.name:
            return self.embedder
        return self.extra_embedders[name]

    def relay(self, config: RelayConfig = FAST, embedder: Embedder | None = None) -> Relay:
        resolve = self.resolve if embedder is None else (lambda _name: embedder)
        relay = Relay(self.queue, self.index, resolve, config)
        self.relays.append(relay)
        return relay

    def start(self, relay: Relay | None = None) -> Relay:
        relay = relay or self.relay()
        self.tasks.append(asyncio.create_task(relay.run()))
        return relay

    async def stop_all(self) -> None:
        for relay in self.relays:
            relay.stop()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)
        self.tasks.clear()

    def recall(self) -> HybridRecall:
        return HybridRecall(self.store, self.queue, self.index, self.resolve)

    async def current_state(self) -> IndexState:
        state = await self.queue.read_state()
        assert state is not None
        return state

    async def coherency(self) -> CoherencyReport:
        return await measure(self.queue, self.index, (await self.current_state()).active)


@contextlib.asynccontextmanager
async def open_env(settings: Settings, kind: str = "qdrant") -> AsyncIterator[Env]:
    store = await open_store(settings)
    inner = await open_inner_index(settings, kind)
    index = FaultyIndex(inner)
    embedder = CountingEmbedder(base_embedder())
    queue = queue_on(store.anchor)
    schema = settings.postgres_schema if settings.postgres_url else None
    state = await ensure_state(queue, index, embedder, collection_prefix(queue.backend, schema))
    env = Env(settings, store, queue, index, embedder, state)
    try:
        yield env
    finally:
        await env.stop_all()
        await index.close()
        await store.close()

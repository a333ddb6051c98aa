"""Opening the whole relay stack from settings: the garden store, its relay adapter, the vector index, the
embedders and the index state. The CLI, the bench and other capabilities (health, demo) start here.

In-process mode: the embedded index (qdrant-edge) has one owning process, so on the embedded default the
command that opened it drains the outbox itself (`Synapse.drain`) before it reads; `kgents synapse run` is the
long-running relay for any backend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kgents.config import Settings
from kgents.garden import GardenStore, open_store
from kgents.resonance.embedders import DEFAULT_EMBEDDER
from kgents.resonance.protocols import Embedder, VectorIndex
from kgents.synapse.anchor import RelayAnchor, open_relay_anchor
from kgents.synapse.coherency import CoherencyReport, ReconcileReport, measure, reconcile
from kgents.synapse.metrics import SynapseMetrics, collect_metrics
from kgents.synapse.records import IndexState
from kgents.synapse.reindex import ReindexReport, reindex
from kgents.synapse.relay import Relay, RelayConfig
from kgents.synapse.search import SemanticSearch
from kgents.synapse.state import check_embedder, collection_prefix, ensure_state

IN_PROCESS_LEASE_S = 5.0
"""Short leases for in-process drains: only the index's owner can relay, so a lease only guards against a crash."""


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
    anchor: RelayAnchor
    index: VectorIndex
    embedders: EmbedderCache
    state: IndexState
    prefix: str

    @property
    def in_process(self) -> bool:
        """True on the embedded index: no other process can relay for us."""
        return self.index.backend == "edge"

    def relay(self, config: RelayConfig | None = None) -> Relay:
        return Relay(self.anchor, self.index, self.embedders, config)

    def search(self) -> SemanticSearch:
        return SemanticSearch(self.store, self.anchor, self.index, self.embedders)

    async def drain(self, timeout_s: float = 60.0) -> int:
        """Apply pending outbox events in this process (the embedded default's in-process relay)."""
        return await self.relay(RelayConfig(lease_s=IN_PROCESS_LEASE_S)).drain(timeout_s)

    async def refresh_state(self) -> IndexState:
        state = await self.anchor.read_state()
        if state is not None:
            self.state = state
        return self.state

    async def coherency(self) -> CoherencyReport:
        return await measure(self.anchor, self.index, (await self.refresh_state()).active)

    async def metrics(self) -> SynapseMetrics:
        return await collect_metrics(self.anchor)

    async def reconcile(self) -> ReconcileReport:
        return await reconcile(self.anchor, self.index, self.embedders, await self.refresh_state())

    async def reindex(self, embedder_name: str, progress: Callable[[int], None] | None = None) -> ReindexReport:
        embedder = self.embedders(embedder_name)
        report = await reindex(
            self.anchor,
            self.index,
            embedder,
            self.embedders,
            await self.refresh_state(),
            self.prefix,
            progress,
        )
        await self.refresh_state()
        return report

    async def close(self) -> None:
        try:
            await self.index.close()
        finally:
            await self.store.close()


async def open_synapse(
    settings: Settings,
    *,
    index: VectorIndex | None = None,
    embedders: EmbedderCache | None = None,
    store: GardenStore | None = None,
    recreate: bool = False,
) -> Synapse:
    """Everything the relay, reconcile, reindex and search need, opened and checked (one-line errors). A
    collection missing from the index is MissingCollectionError unless `recreate` (for reconcile and reindex)."""
    own_store = store is None
    store = store or await open_store(settings)
    opened_index: Any = None
    try:
        opened_index = index or await _default_index(settings)
        anchor = await open_relay_anchor(store)
        embedders = embedders or EmbedderCache()
        configured = configured_embedder(settings)
        schema = settings.postgres_schema if settings.postgres_url else None
        prefix = collection_prefix(anchor.backend, schema)
        existing = await anchor.read_state()
        if existing is not None:
            check_embedder(existing, configured)
        embedder = embedders(existing.active.embedder if existing else configured or DEFAULT_EMBEDDER)
        state = await ensure_state(anchor, opened_index, embedder, prefix, recreate=recreate)
        return Synapse(settings, store, anchor, opened_index, embedders, state, prefix)
    except BaseException:
        if opened_index is not None and index is None:
            await opened_index.close()
        if own_store:
            await store.close()
        raise

"""`AsyncMemory`: one persona's memory in this process, over the settings (embedded default or the real triad).

One open: one SQLite connection (or one asyncpg pool) and one migration run, shared by the garden, the relay side
and the soul's snapshots. The persona is checked once, here; every call below passes it on as given.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from types import TracebackType
from typing import Any

from kgents.config import Settings, check_persona
from kgents.errors import ConflictError, NotFoundError, ValidationError
from kgents.garden.filters import EntryFilter
from kgents.garden.model import EntryType, GardenEntry
from kgents.garden.records import AuditRecord, GardenQuery, OrderBy
from kgents.garden.service import PersonaGarden
from kgents.garden.store import GardenStore, open_store
from kgents.memory.api import DEFAULT_TYPE, EntryRef, MemoryItem, RecallHit, SoulView
from kgents.memory.inline import Indexer
from kgents.memory.recall import recall
from kgents.memory.replay import forgotten_already, stored_already
from kgents.resonance.protocols import VectorIndex
from kgents.soul.model import SoulState
from kgents.soul.service import SoulService
from kgents.soul.snapshot import snapshots_on
from kgents.soul.spark import SparkStore
from kgents.synapse.runtime import Synapse, open_synapse

"""The fields `update` changes (the lifecycle moves only by its own rules: nurture, compost, revive)."""
_ORDERS = {"confidence": OrderBy.CONFIDENCE, "planted": OrderBy.PLANTED, "nurtured": OrderBy.NURTURED}


class AsyncMemory:
    """One persona's memory: `async with AsyncMemory(persona="kent") as m: await m.remember("…")`."""

    def __init__(self, persona: str | None = None, settings: Settings | None = None) -> None:
        base = settings or Settings.from_env()
        self._settings = base.with_persona(check_persona(persona)) if persona else base
        self._store: GardenStore | None = None
        self._synapse: Synapse | None = None
        self._soul: SoulService | None = None
        self._garden: PersonaGarden | None = None
        self._indexer: Indexer | None = None
        self._owns_stack = True

    @classmethod
    def shared(cls, synapse: Synapse, spark: SparkStore, persona: str) -> AsyncMemory:
        """A memory of `persona` over a stack opened once for many personas (`kgents serve`): it uses the
        synapse (store, index) and the Spark but leaves them open when it closes; their opener closes them."""
        memory = cls(persona, synapse.settings)
        memory._owns_stack = False
        memory._store = synapse.store
        memory._synapse = synapse
        memory._soul = SoulService(
            spark, snapshots_on(synapse.store.anchor), memory.persona, ttl_s=synapse.settings.soul_ttl_seconds
        )
        memory._garden = PersonaGarden(synapse.store, memory.persona)
        memory._indexer = Indexer(synapse)
        return memory

    @classmethod
    async def open(
        cls, settings: Settings | None = None, persona: str | None = None, *, index: VectorIndex | None = None
    ) -> AsyncMemory:
        """Open on `settings` (default: the environment's) for `persona` (default: the settings'); `index`: a
        vector index already opened (it is closed with the memory), instead of the one the settings name."""
        memory = cls(persona, settings)
        await memory._open(index)
        return memory

    async def _open(self, index: VectorIndex | None = None) -> None:
        if self._store is not None:
            return
        settings = self._settings
        store = await open_store(settings)
        try:
            self._synapse = await open_synapse(settings, store=store, index=index)
            self._soul = SoulService(
                await _open_spark(settings),
                snapshots_on(store.anchor),
                settings.persona,
                ttl_s=settings.soul_ttl_seconds,
            )
        except BaseException:
            if self._synapse is not None:
                await self._synapse.close()
            else:
                await store.close()
            raise
        self._store = store
        self._garden = PersonaGarden(store, settings.persona)
        self._indexer = Indexer(self._synapse)

    async def __aenter__(self) -> AsyncMemory:
        await self._open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        synapse, soul = self._synapse, self._soul
        self._store = self._synapse = self._soul = self._garden = self._indexer = None
        if not self._owns_stack:
            return
        try:
            if soul is not None:
                await soul.spark.close()
        finally:
            if synapse is not None:
                await synapse.close()  # closes the index and the store (and so the one connection)

    # -- parts -------------------------------------------------------------------------------------------------
    @property
    def persona(self) -> str:
        return self._settings.persona

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def garden(self) -> PersonaGarden:
        if self._garden is None:
            raise RuntimeError("this memory is not open (use `async with` or `await AsyncMemory.open()`)")
        return self._garden

    @property
    def synapse(self) -> Synapse:
        if self._synapse is None:
            raise RuntimeError("this memory is not open (use `async with` or `await AsyncMemory.open()`)")
        return self._synapse

    @property
    def indexer(self) -> Indexer:
        if self._indexer is None:
            raise RuntimeError("this memory is not open (use `async with` or `await AsyncMemory.open()`)")
        return self._indexer

    @property
    def souls(self) -> SoulService:
        if self._soul is None:
            raise RuntimeError("this memory is not open (use `async with` or `await AsyncMemory.open()`)")
        return self._soul

    # -- writing -----------------------------------------------------------------------------------------------
    async def remember(
        self,
        content: str,
        *,
        type: EntryType | str = DEFAULT_TYPE,
        tags: Sequence[str] = (),
        confidence: float = 0.5,
        observed_at: datetime | None = None,
        evidence: Sequence[str] = (),
        affinities: Mapping[str, float] | None = None,
        entry_id: uuid.UUID | None = None,
    ) -> GardenEntry:
        item = MemoryItem(content, type, tags, confidence, observed_at, evidence, affinities, entry_id)
        return (await self.remember_many([item]))[0]

    async def remember_many(self, items: Sequence[MemoryItem]) -> builtins.list[GardenEntry]:
        entries = [self._entry(i, item) for i, item in enumerate(items)]
        if not entries:
            return []
        try:
            return await self.indexer.plant(self.garden, entries)
        except ConflictError as conflict:  # the same remember sent again (its first answer lost) finds it stored
            stored = await stored_already(self.garden, entries, conflict)
            await self.indexer.settle([e.id for e in stored])
            return stored

    def _entry(self, index: int, item: MemoryItem) -> GardenEntry:
        if not isinstance(item, MemoryItem):
            raise ValidationError(f"item {index} is not a MemoryItem (got {builtins.type(item).__name__})")
        entry = self.garden.new_entry(
            item.content,
            item.type,
            confidence=item.confidence,
            tags=item.tags,
            evidence=item.evidence,
            eigenvector_affinities=item.affinities,
            entry_id=item.entry_id,
        )
        return entry if item.observed_at is None else replace(entry, observed_at=item.observed_at)

    async def update(self, entry: EntryRef, **fields: Any) -> GardenEntry:
        current = await self._resolve(entry)
        changed = await self.garden.update(current.id, **fields)  # the garden names what it cannot update
        await self.indexer.settle([changed.id])
        return changed

    async def nurture(
        self, entry: EntryRef, *, evidence: str | None = None, delta: float = 0.05, confidence: float | None = None
    ) -> GardenEntry:
        current = await self._resolve(entry)
        step = None if confidence is not None else delta
        changed = await self.garden.nurture(current.id, evidence=evidence, confidence_delta=step, confidence=confidence)
        await self.indexer.settle([changed.id])
        return changed

    async def forget(self, entry: EntryRef) -> None:
        """Delete the entry; an entry already deleted (named by its whole id) is gone as asked, so a forget sent
        again after its answer was lost succeeds as the first one did."""
        try:
            entry_id = (await self._resolve(entry)).id
            await self.garden.delete(entry_id)
        except NotFoundError:
            gone = await forgotten_already(self.garden, entry)
            if gone is None:
                raise
            entry_id = gone
        await self.indexer.settle([entry_id])

    async def reassess(self, entry: EntryRef, *, confidence: float, evidence: str | None = None) -> GardenEntry:
        current = await self._resolve(entry)
        changed = await self.garden.reassess(current.id, confidence, evidence=evidence)
        await self.indexer.settle([changed.id])
        return changed

    async def compost(
        self, entry: EntryRef, *, successor: EntryRef | None = None, evidence: str | None = None
    ) -> GardenEntry:
        current = await self._resolve(entry)
        after = None if successor is None else await self._resolve(successor)
        changed = await self.garden.compost(current.id, successor=None if after is None else after.id, note=evidence)
        await self.indexer.settle([changed.id])
        return changed

    # -- reading -----------------------------------------------------------------------------------------------
    async def get(self, entry: EntryRef) -> GardenEntry:
        return await self._resolve(entry)

    async def _resolve(self, entry: EntryRef) -> GardenEntry:
        if isinstance(entry, uuid.UUID):
            return await self.garden.get(entry)
        if not isinstance(entry, str):
            raise ValidationError(f"an entry is named by its id or an id prefix (got {builtins.type(entry).__name__})")
        return await self.garden.resolve(entry)

    async def list(
        self, filters: EntryFilter | None = None, *, order_by: str = "confidence", limit: int = 100, offset: int = 0
    ) -> builtins.list[GardenEntry]:
        if order_by not in _ORDERS:
            raise ValidationError(f"order_by must be one of {', '.join(_ORDERS)} (got {order_by!r:.40})")
        query = GardenQuery(order_by=_ORDERS[order_by], limit=limit, offset=offset)
        return await self.garden.store.query(self.persona, filters or EntryFilter(), query)

    async def recall(
        self,
        query: str,
        *,
        limit: int = 10,
        filters: EntryFilter | None = None,
        min_score: float | None = None,
        explain: bool = False,
        mode: str = "hybrid",
        asked_at: datetime | None = None,
    ) -> builtins.list[RecallHit]:
        flt = filters or EntryFilter()
        return await recall(self.synapse, self.persona, query, limit, flt, min_score, explain, mode, asked_at)

    async def history(self, entry: EntryRef) -> builtins.list[AuditRecord]:
        if isinstance(entry, str) and len(entry.strip()) < 32:
            entry = (await self._resolve(entry)).id
        return await self.garden.history(entry)

    # -- the soul ----------------------------------------------------------------------------------------------
    async def soul(self) -> SoulView:
        recovery = await self.souls.recover(self.persona)
        return soul_view(recovery.state, recovery.source.value)

    async def set_mode(self, mode: str) -> SoulView:
        state = await self.souls.set_mode(self.persona, mode)
        return soul_view(state, "written")

    async def nudge(self, shifts: Mapping[str, float]) -> SoulView:
        state = (await self.souls.update(self.persona, lambda s: s.nudged(shifts)))[1]
        return soul_view(state, "written")

    async def record_interaction(self, tokens: int = 0) -> SoulView:
        return soul_view(await self.souls.record_interaction(self.persona, tokens), "written")

    # -- health ------------------------------------------------------------------------------------------------
    async def status(self) -> dict[str, Any]:
        synapse = self.synapse
        entries = await self.garden.store.count(self.persona, EntryFilter(include_compost=True))
        pending = len(await self.garden.store.outbox_peek(self.persona, 1000))
        recovery = await self.souls.recover(self.persona)
        state = await synapse.refresh_state()
        return {
            "persona": self.persona,
            "anchor": self._settings.describe_anchor(),
            "index": synapse.index.backend,
            "embedder": state.active.embedder,
            "entries": entries,
            "pending": pending,
            "soul_source": recovery.source.value,
            "index_graph": None if (graph := await synapse.graph()) is None else graph.to_dict(),
        }

    async def build_index(self, *, now: bool = True, wait_s: float | None = None) -> dict[str, Any] | None:
        graph = await self.synapse.build_graph(now=now, timeout_s=wait_s)
        return None if graph is None else graph.to_dict()


def soul_view(state: SoulState, source: str) -> SoulView:
    eigen = {axis: (v.value, v.confidence) for axis, v in state.eigenvectors.items()}
    return SoulView(state.soul_id, state.mode.value, eigen, state.revision, state.interactions, source)


async def _open_spark(settings: Settings) -> SparkStore:
    from kgents.soul.session import open_spark

    return await open_spark(settings)

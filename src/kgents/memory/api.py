"""The contract of kgents' Python face: one persona's memory, the same whether it runs in this process (embedded or
the real triad) or behind `kgents serve` (KGENTS_SERVER_URL).

`AsyncMemory` implements `MemoryAPI` in-process; `RemoteMemory` implements it over HTTP; `Memory` is the
synchronous wrapper of either. The HTTP API, the MCP tools and the CLI are thin layers over this protocol, so every
way in behaves the same. Every method is scoped to the memory's persona: no argument can name another one.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from kgents.garden.filters import EntryFilter
from kgents.garden.model import EntryType, GardenEntry
from kgents.garden.records import AuditRecord
from kgents.synapse.hit import RecallHit as RecallHit  # the one hit type, made by the recall walk

DEFAULT_TYPE = EntryType.INSIGHT
"""The entry type of `remember` when none is given: a thing learned, not yet known to be a preference or a value."""

EntryRef = uuid.UUID | str
"""An entry id, or a unique prefix of 4+ hex characters of one."""


@dataclass(frozen=True, slots=True)
class MemoryItem:
    """One thing to remember, for `remember_many` (the fields of `remember`)."""

    content: str
    type: EntryType | str = DEFAULT_TYPE
    tags: Sequence[str] = ()
    confidence: float = 0.5
    observed_at: datetime | None = None
    evidence: Sequence[str] = ()
    affinities: Mapping[str, float] | None = None
    entry_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class SoulView:
    """The soul as the face shows it: dialogue mode, eigenvectors (axis → (value, confidence)), counters."""

    soul_id: str
    mode: str
    eigenvectors: Mapping[str, tuple[float, float]]
    revision: int
    interactions: int
    source: str
    """Where this read came from: cache, snapshot or new."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "soul_id": self.soul_id,
            "mode": self.mode,
            "eigenvectors": {k: {"value": v, "confidence": c} for k, (v, c) in self.eigenvectors.items()},
            "revision": self.revision,
            "interactions": self.interactions,
            "source": self.source,
        }


class MemoryAPI(Protocol):
    """One persona's memory. `EntryFilter` is the one filter type of list, recall and the index; COMPOST entries
    are left out of `recall` and `list` unless the filter asks for them."""

    @property
    def persona(self) -> str: ...

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
        """Store one memory; it is searchable by `recall` when this returns."""
        ...

    async def remember_many(self, items: Sequence[MemoryItem]) -> builtins.list[GardenEntry]:
        """Store many in one transaction (all or none); all searchable when this returns."""
        ...

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
        """Entries by meaning and by words, best first, hydrated from the truth. `mode`: `hybrid` (relevance in
        [0, 1], on one scale for every query and garden: see `kgents.synapse.relevance`; it prefers the memories
        of the people the query names and, as `asked_at` reads it, default now, of the time it names), `dense`
        (cosine similarity of meaning only) or `lexical` (words only). `explain` adds how each score came about
        and what the query was read as."""
        ...

    async def get(self, entry: EntryRef) -> GardenEntry: ...

    async def list(
        self, filters: EntryFilter | None = None, *, order_by: str = "confidence", limit: int = 100, offset: int = 0
    ) -> builtins.list[GardenEntry]: ...

    async def update(self, entry: EntryRef, **fields: Any) -> GardenEntry:
        """Change content, type, tags, confidence, evidence or affinities (compare-and-set on the version)."""
        ...

    async def nurture(
        self, entry: EntryRef, *, evidence: str | None = None, delta: float = 0.05, confidence: float | None = None
    ) -> GardenEntry: ...

    async def forget(self, entry: EntryRef) -> None:
        """Delete one entry everywhere (anchor row, then its index point through the relay)."""
        ...

    async def history(self, entry: EntryRef) -> builtins.list[AuditRecord]: ...

    async def soul(self) -> SoulView: ...

    async def set_mode(self, mode: str) -> SoulView: ...

    async def reassess(self, entry: EntryRef, *, confidence: float, evidence: str | None = None) -> GardenEntry:
        """Set confidence (up or down) with the lifecycle following it both ways (never to or from COMPOST), without
        counting as a nurture: for contradictions and decay."""
        ...

    async def compost(
        self, entry: EntryRef, *, successor: EntryRef | None = None, evidence: str | None = None
    ) -> GardenEntry:
        """Move an entry to COMPOST (kept, with its history); `successor`: the entry that supersedes it, recorded on
        it as the tag `superseded-by:<id>` and in its evidence."""
        ...

    async def nudge(self, shifts: Mapping[str, float]) -> SoulView:
        """Move the soul's eigenvector values by `shifts` (axis → delta), each kept within [0, 1]."""
        ...

    async def record_interaction(self, tokens: int = 0) -> SoulView:
        """Count one interaction with the soul."""
        ...

    async def status(self) -> dict[str, Any]:
        """A summary of this memory's health: entries, pending events, coherency, soul source, and the index's
        HNSW graph (`index_graph`: `IndexGraph.to_dict()`, None where a Qdrant server builds its own)."""
        ...

    async def build_index(self, *, now: bool = True, wait_s: float | None = None) -> dict[str, Any] | None:
        """Wait for the index's HNSW graph to be built, first starting a build if `now` (the embedded index builds
        it by itself past a threshold: this is for a caller that wants it now, or wants to know it is done);
        `wait_s` seconds at most (the build goes on). The graph's state then, as `status()["index_graph"]`."""
        ...

    async def close(self) -> None: ...

"""Recall: dense and lexical candidates from the index, fused, hydrated from the anchor (the truth).

One walk for every caller (the Python face, the CLI, AGENTESE, the benches): the query is checked, the index
state read (`state`: the embedded index's owner keeps it in memory), the query embedded once, and the index
finds both signals' candidates in one call with the filter inside both searches (persona given apart from it),
each `POOL` deep whatever the limit: a hybrid fused from only the first k of each list loses to the lexical
signal alone. A hybrid recall then lifts each of the first `CONTEXT_DEPTH` candidates by a share of its best
neighbour's score (the persona's memories observed just before and after it, a conversation's adjacent turns),
neighbours counted only among the candidates; the anchor gives those candidates' rows and their neighbours in
one round trip, and the hits come from those rows (they are the first `CONTEXT_DEPTH` after the lift too), kept
only if the truth still passes the filter (the index may lag by milliseconds).

COMPOST: the filter is the one `EntryFilter` (COMPOST left out unless it sets `include_compost` or names
COMPOST). Leaving COMPOST out inside the index slows its searches (any condition on the stage: 0.7 vs 0.5 ms at
10k points), and the truth leaves it out anyway, so the index is asked without that condition first, and with
it only if the page is short while a candidate pool was full (COMPOST may have crowded it). A collection built
before the lexical signal existed answers with the dense signal alone until `kgents synapse reindex`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from kgents.errors import ValidationError
from kgents.garden.filters import EntryFilter
from kgents.garden.model import GardenEntry, check_persona, check_text
from kgents.garden.records import Neighboured
from kgents.garden.store import GardenStore
from kgents.resonance.lexical import query_terms
from kgents.resonance.protocols import LexicalIndex, RankedHit, VectorIndex
from kgents.synapse.apply import EmbedderResolver, embed
from kgents.synapse.fusion import (
    CONTEXT_SHARE,
    COVERAGE_POWER,
    DENSE_WEIGHT,
    Fused,
    Fusion,
    RecallMode,
    fuse,
    single,
    with_context,
)
from kgents.synapse.queue import RelayQueue
from kgents.synapse.records import IndexState

MAX_LIMIT = 200
"""The most hits one recall returns."""
POOL = 100
"""Candidates each signal contributes before fusion (bench/recall.py: a pool of 20 loses to the lexical signal
alone at k = 10, 200 gains little and costs 2-3 ms a search)."""
CONTEXT_DEPTH = 50
"""The fused candidates whose neighbours (in observed_at order) are looked up, with their rows, in one anchor
round trip."""


@dataclass(frozen=True, slots=True)
class RecallHit:
    """One recalled entry, hydrated from the truth, with the score that ranked it and each signal's rank (None
    where that signal did not find it, or where the caller did not ask how the score came about)."""

    entry: GardenEntry
    score: float
    dense_rank: int | None = None
    lexical_rank: int | None = None

    @property
    def explain(self) -> dict[str, Any]:
        """How the score came about (each signal's rank and the fused score), or {} where nobody asked."""
        if self.dense_rank is None and self.lexical_rank is None:
            return {}
        return {"dense_rank": self.dense_rank, "lexical_rank": self.lexical_rank, "fused": self.score}

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"score": round(self.score, 6), **self.entry.to_dict()}
        if explain := self.explain:
            found["explain"] = explain
        return found


def check_query(query: object, limit: object, min_score: object) -> str:
    if not isinstance(query, str) or not query.strip():
        raise ValidationError("a search needs some text")
    check_text(query, "the search text")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be between 1 and {MAX_LIMIT} (got {limit!r:.20})")
    if min_score is not None and (
        isinstance(min_score, bool) or not isinstance(min_score, int | float) or not 0.0 <= min_score <= 1.0
    ):
        raise ValidationError(f"min_score must be a number between 0 and 1 (got {min_score!r:.20})")
    return query


class HybridRecall:
    """`recall` over the active collection of one anchor."""

    def __init__(
        self,
        store: GardenStore,
        queue: RelayQueue,
        index: VectorIndex,
        embedders: EmbedderResolver,
        *,
        pool: int = POOL,
        fusion: Fusion = Fusion.WEIGHTED,
        dense_weight: float = DENSE_WEIGHT,
        coverage_power: float = COVERAGE_POWER,
        context: float = CONTEXT_SHARE,
        state: Callable[[], Awaitable[IndexState | None]] | None = None,
    ) -> None:
        self.store = store
        self.queue = queue
        self.index = index
        self.embedders = embedders
        self.pool = pool
        self.fusion = fusion
        self.dense_weight = dense_weight
        self.coverage_power = coverage_power
        self.context = context
        self.state = state or queue.read_state
        """Where the active collection comes from (default: read from the anchor at every recall)."""

    async def signals(
        self, collection: str, embedder_name: str, query: str, persona: str, flt: EntryFilter, mode: RecallMode
    ) -> tuple[list[RankedHit], list[RankedHit] | None]:
        """Each signal's candidates of `persona`'s points passing `flt`: (dense, lexical), lexical None when the
        collection has no lexical signal."""
        lexical_index = self.index if isinstance(self.index, LexicalIndex) else None
        if lexical_index is not None and not await lexical_index.has_lexical(collection):
            lexical_index = None
        vector = None
        if mode is not RecallMode.LEXICAL or lexical_index is None:
            embedded = (await embed(self.embedders(embedder_name), [query]))[0]
            vector = embedded if np.any(embedded) else None  # no known word (only emoji, say): close to nothing
        if lexical_index is None:
            hits = [] if vector is None else await self.index.search(collection, vector, persona, flt, self.pool)
            return [RankedHit(h.id, h.score) for h in hits], None
        terms = query_terms(query) if mode is not RecallMode.DENSE else None
        return await lexical_index.search_signals(collection, vector, terms, persona, flt, self.pool)

    async def recall(
        self,
        persona: str,
        query: str,
        limit: int = 10,
        filters: EntryFilter | None = None,
        *,
        mode: RecallMode = RecallMode.HYBRID,
        min_score: float | None = None,
    ) -> list[RecallHit]:
        """Entries of `persona` by meaning and by words, best first (fused score; or one signal's own in `mode`
        dense / lexical), hydrated from the truth."""
        persona = check_persona(persona)
        query = check_query(query, limit, min_score)
        flt = filters or EntryFilter()
        state = await self.state()
        if state is None:
            return []
        loose = replace(flt, include_compost=True) if not flt.lifecycles and not flt.include_compost else flt
        found: list[RecallHit] = []
        for asked in dict.fromkeys((loose, flt)):
            dense, lexical = await self.signals(
                state.active.collection, state.active.embedder, query, persona, asked, mode
            )
            found, refused = await self._found(persona, dense, lexical, flt, mode, limit, min_score)
            if len(found) == limit or not refused or (len(dense) < self.pool and len(lexical or ()) < self.pool):
                break  # enough; or no candidate was one the filter refuses (asking without them finds the same);
                # or each search saw every point passing the filter
        return found

    async def _found(
        self,
        persona: str,
        dense: list[RankedHit],
        lexical: list[RankedHit] | None,
        flt: EntryFilter,
        mode: RecallMode,
        limit: int,
        min_score: float | None,
    ) -> tuple[list[RecallHit], int]:
        """The candidates fused (and lifted by their neighbours), then the first `limit` the truth still holds
        and `flt` accepts; and how many candidates `flt` refused."""
        rows: dict[uuid.UUID, Neighboured] = {}
        asked: set[uuid.UUID] = set()
        if mode is RecallMode.HYBRID and lexical is not None:
            power, weight = self.coverage_power, self.dense_weight
            fused = fuse(dense, lexical, self.fusion, dense_weight=weight, coverage_power=power)
            if self.context and fused:
                top = [f.id for f in fused[:CONTEXT_DEPTH]]  # the first CONTEXT_DEPTH after the lift too
                rows, asked = await self.store.get_with_neighbours(persona, top), set(top)
                fused = with_context(fused, {i: row.near for i, row in rows.items()}, self.context)
        elif mode is RecallMode.LEXICAL and lexical is not None:
            fused = single(lexical, RecallMode.LEXICAL)
        else:
            fused = single(dense, RecallMode.DENSE)  # asked for, or all an index without the lexical signal has
        return await self._hydrate(persona, fused, rows, asked, flt, limit, min_score)

    async def _hydrate(
        self,
        persona: str,
        fused: list[Fused],
        rows: dict[uuid.UUID, Neighboured],
        asked: set[uuid.UUID],
        flt: EntryFilter,
        limit: int,
        min_score: float | None,
    ) -> tuple[list[RecallHit], int]:
        """Page by page, the entries of `fused` the truth holds and `flt` accepts, and how many it refused; rows
        already read (`asked`) are not read again."""
        kept = fused if min_score is None else [f for f in fused if f.score >= min_score]
        hits: list[RecallHit] = []
        refused = 0
        step = limit * 2
        for start in range(0, len(kept), step):
            page = kept[start : start + step]
            missing = [f.id for f in page if f.id not in asked]
            fetched = await self.store.get_many(persona, missing) if missing else {}
            for f in page:
                row = rows.get(f.id)
                entry = row.entry if row is not None else fetched.get(f.id)
                if entry is None:  # the index may lag the truth by milliseconds
                    continue
                if not flt.accepts(entry):
                    refused += 1
                    continue
                hits.append(RecallHit(entry, f.score, f.dense_rank, f.lexical_rank))
                if len(hits) == limit:
                    return hits, refused
        return hits, refused

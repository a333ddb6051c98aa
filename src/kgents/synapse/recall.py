"""Recall: dense and lexical candidates from the index, fused, hydrated from the anchor (the truth).

Both signals search the same filtered population (persona, lifecycle, type, tags, confidence are conditions
of both index queries, never applied afterwards), each `POOL` deep whatever the limit: a hybrid fused from
only the first k of each list loses to the lexical signal alone. A hybrid recall then lifts each of the first
`CONTEXT_DEPTH` candidates by a share of its best neighbour's score (the persona's memories observed just before
and after it, a conversation's adjacent turns), neighbours counted only among the filtered candidates. The filter
is the one `EntryFilter` (COMPOST left out unless it sets `include_compost` or names COMPOST), the persona given
apart from it. A collection built before the lexical signal existed answers with the dense signal alone until
`kgents synapse reindex`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kgents.errors import ValidationError
from kgents.garden.filters import EntryFilter
from kgents.garden.model import GardenEntry, check_persona, check_text
from kgents.garden.store import GardenStore
from kgents.resonance.lexical import query_terms
from kgents.resonance.protocols import LexicalIndex, VectorIndex
from kgents.synapse.apply import EmbedderResolver, embed
from kgents.synapse.fusion import (
    CONTEXT_SHARE,
    COVERAGE_POWER,
    DENSE_WEIGHT,
    Fused,
    Fusion,
    Ranked,
    RecallMode,
    fuse,
    single,
    with_context,
)
from kgents.synapse.queue import RelayQueue

MAX_LIMIT = 200
"""The most hits one recall returns."""
POOL = 100
"""Candidates each signal contributes before fusion (bench/recall.py: a pool of 20 loses to the lexical signal
alone at k = 10, 200 gains little and costs 2-3 ms a search)."""
CONTEXT_DEPTH = 50
"""The fused candidates whose neighbours (in observed_at order) are looked up, in one anchor round trip."""


@dataclass(frozen=True, slots=True)
class RecallHit:
    entry: GardenEntry
    score: float
    dense_rank: int | None = None
    lexical_rank: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 6),
            "dense_rank": self.dense_rank,
            "lexical_rank": self.lexical_rank,
            **self.entry.to_dict(),
        }


def check_query(query: object, limit: int, min_score: float | None) -> str:
    if not isinstance(query, str) or not query.strip():
        raise ValidationError("a search needs some text")
    check_text(query, "the search text")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be between 1 and {MAX_LIMIT} (got {limit})")
    if min_score is not None and not 0.0 <= min_score <= 1.0:
        raise ValidationError(f"min_score must be between 0 and 1 (got {min_score})")
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

    async def candidates(
        self, collection: str, embedder_name: str, query: str, persona: str, flt: EntryFilter, mode: RecallMode
    ) -> list[Fused]:
        """The fused candidate list (ids and ranks) of `persona`'s points passing `flt`, before hydration."""
        lexical_index = self.index if isinstance(self.index, LexicalIndex) else None
        if lexical_index is not None and not await lexical_index.has_lexical(collection):
            lexical_index = None
        vector = None
        if mode is not RecallMode.LEXICAL or lexical_index is None:
            embedded = (await embed(self.embedders(embedder_name), [query]))[0]
            vector = embedded if np.any(embedded) else None  # no known word (only emoji, say): close to nothing
        terms = query_terms(query) if mode is not RecallMode.DENSE else None
        if lexical_index is not None:
            found, matched = await lexical_index.search_signals(collection, vector, terms, persona, flt, self.pool)
            dense = [Ranked(h.id, h.score) for h in found]
            lexical = [Ranked(h.id, h.score, h.coverage) for h in matched]
        else:
            hits = [] if vector is None else await self.index.search(collection, vector, persona, flt, self.pool)
            dense, lexical = [Ranked(h.id, h.score) for h in hits], []
        if mode is RecallMode.HYBRID and lexical_index is not None:
            power = self.coverage_power
            fused = fuse(dense, lexical, self.fusion, dense_weight=self.dense_weight, coverage_power=power)
            if not self.context or not fused:
                return fused
            near = await self.store.neighbours(persona, [f.id for f in fused[:CONTEXT_DEPTH]])
            return with_context(fused, near, self.context)
        if mode is RecallMode.LEXICAL and lexical_index is not None:
            return single(lexical, RecallMode.LEXICAL)
        return single(dense, RecallMode.DENSE)  # asked for, or all an index without the lexical signal has

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
        persona = check_persona(persona)
        query = check_query(query, limit, min_score)
        filters = filters or EntryFilter()
        state = await self.queue.read_state()
        if state is None:
            return []
        active = state.active
        fused = await self.candidates(active.collection, active.embedder, query, persona, filters, mode)
        fused = [f for f in fused if min_score is None or f.score >= min_score]
        hits: list[RecallHit] = []
        step = limit * 2
        for start in range(0, len(fused), step):  # hydrate page by page until enough pass
            page = fused[start : start + step]
            rows = await self.store.get_many(persona, [f.id for f in page])
            for f in page:
                entry = rows.get(f.id)
                if entry is None or not filters.accepts(entry):  # the index may lag the truth by milliseconds
                    continue
                hits.append(RecallHit(entry, f.score, f.dense_rank, f.lexical_rank))
                if len(hits) == limit:
                    return hits
        return hits

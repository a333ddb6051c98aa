"""Semantic search over one persona's garden: the index finds candidates, the anchor (the truth) answers.

Every hit is hydrated from the anchor; a hit whose row is gone, belongs to another persona or no longer
passes the filters (the index may lag by milliseconds) is dropped, so results never show what the truth does
not hold.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from kgents.errors import ValidationError
from kgents.garden.filters import EntryFilter
from kgents.garden.model import GardenEntry, check_persona, check_text
from kgents.garden.store import GardenStore
from kgents.resonance.protocols import VectorIndex
from kgents.synapse.apply import EmbedderResolver
from kgents.synapse.queue import RelayQueue

MAX_LIMIT = 200
OVERFETCH = 2


@dataclass(frozen=True, slots=True)
class SearchHit:
    entry: GardenEntry
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"score": round(self.score, 6), **self.entry.to_dict()}


class SemanticSearch:
    """`find_by_semantic_similarity` and `find_similar` over the active collection of one anchor."""

    def __init__(self, store: GardenStore, queue: RelayQueue, index: VectorIndex, embedders: EmbedderResolver) -> None:
        self.store = store
        self.queue = queue
        self.index = index
        self.embedders = embedders

    async def find_by_semantic_similarity(
        self,
        persona: str,
        query: str,
        limit: int = 10,
        filters: EntryFilter | None = None,
        *,
        score_threshold: float | None = None,
        exclude: Iterable[Any] = (),
    ) -> list[SearchHit]:
        persona = check_persona(persona)
        if not isinstance(query, str) or not query.strip():
            raise ValidationError("a search needs some text")
        check_text(query, "the search text")
        if not 1 <= limit <= MAX_LIMIT:
            raise ValidationError(f"limit must be between 1 and {MAX_LIMIT} (got {limit})")
        filters = filters or EntryFilter()
        state = await self.queue.read_state()
        if state is None:
            return []
        embedder = self.embedders(state.active.embedder)
        vector = (await asyncio.to_thread(embedder.embed, [query]))[0]
        if not np.any(vector):  # no word the embedder knows (e.g. only emoji): nothing is close to it
            return []
        skip = set(exclude)
        hits = await self.index.search(
            state.active.collection,
            vector,
            persona,
            filters,
            limit * OVERFETCH + len(skip),
            score_threshold,
        )
        wanted = [h.id for h in hits if h.id not in skip]
        rows = await self.store.get_many(persona, wanted)
        found: list[SearchHit] = []
        for hit in hits:
            entry = rows.get(hit.id)
            if entry is None or not filters.accepts(entry):
                continue
            found.append(SearchHit(entry, hit.score))
            if len(found) == limit:
                break
        return found

    async def find_similar(
        self,
        entry: GardenEntry,
        threshold: float = 0.5,
        limit: int = 10,
        filters: EntryFilter | None = None,
    ) -> list[SearchHit]:
        """Entries of the same persona whose meaning is at least `threshold` close to `entry` (itself
        excluded)."""
        return await self.find_by_semantic_similarity(
            entry.persona, entry.content, limit, filters, score_threshold=threshold, exclude=[entry.id]
        )

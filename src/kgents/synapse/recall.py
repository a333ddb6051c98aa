"""Recall: dense and lexical candidates from the index, scored on one relevance scale, hydrated from the anchor.

One walk for every caller (the Python face, the CLI, AGENTESE, the benches): the query is checked and read (the
time it names, relative to `asked_at`: `reading.py`), the index state read (`state`: the embedded index's owner
keeps it in memory), the query embedded once, and the index finds both signals' candidates in one call with the
filter inside both searches (persona given apart from it), each `POOL` deep whatever the limit: a hybrid fused
from only the first k of each list loses to the lexical signal alone (a dense recall asks only for what its page
needs: `DENSE_MARGIN`). A hybrid recall scores every candidate on the relevance scale (`relevance.py`), reads the
rows of the first `CONTEXT_DEPTH` with their neighbours in one anchor round trip (`Neighboured.glance`: their person
and their time, without building the entries), finds the people the query names among them (`who.py`), prefers their
memories and those of the time it names, and averages in a share of each one's best neighbour (`fusion.py`: the
persona's memories observed just before and after it, a conversation's adjacent turns, counted only among the
candidates). The hits come from those rows where they can, kept only if the truth still passes the filter (the
index may lag by milliseconds).

COMPOST: the filter is the one `EntryFilter` (COMPOST left out unless it sets `include_compost` or names
COMPOST). Leaving COMPOST out inside the index slows its searches (any condition on the stage: 0.7 vs 0.5 ms at
10k points), and the truth leaves it out anyway, so the index is asked without that condition first, and with
it only if the page is short while a candidate pool was full (COMPOST may have crowded it). A collection built
before the lexical signal existed answers with the dense signal alone until `kgents synapse reindex`.
"""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np

from kgents.clock import check_asked_at, utcnow
from kgents.errors import ValidationError
from kgents.garden.filters import EntryFilter
from kgents.garden.model import check_persona, check_text
from kgents.garden.records import Neighboured
from kgents.garden.store import GardenStore
from kgents.resonance.lexical import query_terms
from kgents.resonance.protocols import LexicalIndex, RankedHit, VectorIndex
from kgents.synapse import relevance
from kgents.synapse.apply import EmbedderResolver, embed
from kgents.synapse.fusion import CONTEXT_SHARE, RecallMode, best_first, prefer, single, with_context
from kgents.synapse.hit import RecallHit
from kgents.synapse.queue import RelayQueue
from kgents.synapse.reading import REQUEST_TERMS, Reading, read
from kgents.synapse.records import IndexState
from kgents.synapse.relevance import Candidate
from kgents.synapse.who import named, person_of

MAX_LIMIT = 200
"""The most hits one recall returns."""
POOL = 100
"""Candidates each signal contributes before fusion (bench/recall.py: a pool of 20 loses to the lexical signal
alone at k = 10, 200 gains little and costs 2-3 ms a search)."""
CONTEXT_DEPTH = 100
"""The candidates whose rows (their person, their time) and neighbours (in observed_at order) are read in one
anchor round trip (bench/recall.py's dev split: 50 lost 0.8 points recall_any@10 to 100, 150 gained nothing)."""
DENSE_MARGIN = 2
"""A dense recall asks the engine for `limit` candidates, or this many times `limit` when the truth's filter may
refuse some of them (COMPOST, left out of the index's filter); then, only for a page cut short by refused or
missing candidates, once more without COMPOST at least `POOL` deep."""


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
        depth: int = CONTEXT_DEPTH,
        context: float = CONTEXT_SHARE,
        prefer: bool = True,
        state: Callable[[], Awaitable[IndexState | None]] | None = None,
    ) -> None:
        self.store = store
        self.queue = queue
        self.index = index
        self.embedders = embedders
        self.pool = pool
        self.depth = depth
        self.context = context
        self.prefer = prefer
        """Whether a hybrid recall prefers the people and the time the query names (off: only a bench's
        baseline)."""
        self.state = state or queue.read_state
        """Where the active collection comes from (default: read from the anchor at every recall)."""

    async def signals(
        self,
        collection: str,
        embedder_name: str,
        query: str,
        persona: str,
        flt: EntryFilter,
        mode: RecallMode,
        depth: int | None = None,
    ) -> tuple[list[RankedHit], list[RankedHit] | None]:
        """Each signal's candidates of `persona`'s points passing `flt`, `depth` deep (default `pool`): (dense,
        lexical), lexical None when the collection has no lexical signal."""
        depth = depth or self.pool
        lexical_index = self.index if isinstance(self.index, LexicalIndex) else None
        if lexical_index is not None and not await lexical_index.has_lexical(collection):
            lexical_index = None
        vector = None
        if mode is not RecallMode.LEXICAL or lexical_index is None:
            embedded = (await embed(self.embedders(embedder_name), [query]))[0]
            vector = embedded if np.any(embedded) else None  # no known word (only emoji, say): close to nothing
        if lexical_index is None:
            hits = [] if vector is None else await self.index.search(collection, vector, persona, flt, depth)
            return [RankedHit(h.id, h.score) for h in hits], None
        terms = query_terms(query) if mode is not RecallMode.DENSE else None
        return await lexical_index.search_signals(collection, vector, terms, persona, flt, depth)

    async def recall(
        self,
        persona: str,
        query: str,
        limit: int = 10,
        filters: EntryFilter | None = None,
        *,
        mode: RecallMode = RecallMode.HYBRID,
        min_score: float | None = None,
        asked_at: datetime | None = None,
    ) -> list[RecallHit]:
        """Entries of `persona` by meaning and by words, best first (hybrid: on the relevance scale of
        `relevance.py`; or one signal's own score in `mode` dense / lexical), hydrated from the truth. A time
        the query names ("last week", "in May 2023") is read relative to `asked_at` (default now)."""
        persona = check_persona(persona)
        query = check_query(query, limit, min_score)
        asked = check_asked_at(asked_at) or utcnow()
        reading = read(query, asked, filters or EntryFilter()) if self.prefer else Reading(query)
        flt = reading.narrow(filters or EntryFilter())
        state = await self.state()
        if state is None:
            return []
        loose = replace(flt, include_compost=True) if not flt.lifecycles and not flt.include_compost else flt
        if mode is RecallMode.DENSE:
            return await self.dense(_Walk(self, persona, query, reading, flt, limit, min_score), state, loose)
        found: list[RecallHit] = []
        for asked_flt in dict.fromkeys((loose, flt)):
            dense, lexical = await self.signals(
                state.active.collection, state.active.embedder, reading.text, persona, asked_flt, mode
            )
            walk = _Walk(self, persona, query, reading, flt, limit, min_score)
            found, refused, _ = await walk.found(dense, lexical, mode)
            if len(found) == limit or not refused or (len(dense) < self.pool and len(lexical or ()) < self.pool):
                break  # enough; or no candidate was one the filter refuses (asking without them finds the same);
                # or each search saw every point passing the filter
        return found

    async def dense(self, walk: _Walk, state: IndexState, loose: EntryFilter) -> list[RecallHit]:
        """A dense recall asks the engine for what the page needs (`DENSE_MARGIN`): the engine's work and the
        candidates it returns follow the limit, not the hybrid's pool."""
        limit, flt = walk.limit, walk.flt
        first = limit if loose == flt else DENSE_MARGIN * limit
        found: list[RecallHit] = []
        for asked_flt, depth in ((loose, first), (flt, max(self.pool, DENSE_MARGIN * limit))):
            active = state.active
            dense, _ = await self.signals(
                active.collection, active.embedder, walk.reading.text, walk.persona, asked_flt, RecallMode.DENSE, depth
            )
            found, refused, missing = await walk.found(dense, None, RecallMode.DENSE)
            if len(found) == limit or not (refused or missing) or len(dense) < depth:
                break  # enough; or nothing refused nor missing (a min_score cut); or no more points pass
        return found


@dataclass
class _Walk:
    """One pass of a recall over the candidates both signals gave."""

    recall: HybridRecall
    persona: str
    query: str
    reading: Reading
    flt: EntryFilter
    limit: int
    min_score: float | None
    asked: dict[str, Any] = field(default_factory=dict)
    """What a hybrid recall read the query as (its time, the people it names) and its known share: the hits'
    explanation adds it."""

    async def found(
        self, dense: list[RankedHit], lexical: list[RankedHit] | None, mode: RecallMode
    ) -> tuple[list[RecallHit], int, int]:
        """The candidates scored (and weighed by what the query prefers, and lifted by their neighbours), then
        the first `limit` the truth still holds and `flt` accepts; how many candidates `flt` refused, and how
        many the truth no longer holds."""
        rows: dict[uuid.UUID, Neighboured] = {}
        if mode is RecallMode.HYBRID and lexical is not None:
            found, rows = await self.hybrid(dense, lexical)
        elif mode is RecallMode.LEXICAL and lexical is not None:
            found = single(lexical, RecallMode.LEXICAL)
        else:
            found = single(dense, RecallMode.DENSE)  # asked for, or all an index without the lexical signal has
        return await self.hydrate(found, rows)

    async def hybrid(
        self, dense: list[RankedHit], lexical: list[RankedHit]
    ) -> tuple[list[Candidate], dict[uuid.UUID, Neighboured]]:
        """Both signals on the relevance scale; the first `CONTEXT_DEPTH` candidates' rows and neighbours read
        in one round trip; the people the query names among them; their preferences and their neighbours."""
        terms = query_terms(self.reading.text).indices
        weights = relevance.term_weights(lexical)
        found = relevance.candidates(dense, lexical)
        pooled = relevance.pool_terms(lexical)
        known = relevance.score(found.values(), pooled, relevance.content_terms(terms, REQUEST_TERMS), weights)
        if not found:
            return [], {}
        top = [c.id for c in heapq.nlargest(self.recall.depth, found.values(), key=_score)]
        rows = await self.recall.store.get_with_neighbours(self.persona, top)
        persons: dict[uuid.UUID, str | None] = {}
        for i, row in rows.items():
            c = found[i]
            c.glance, c.near = row.glance(), row.near
            persons[i] = person_of(c.glance.content, c.glance.tags)
        people = named(self.query, {p for p in persons.values() if p})
        if people:  # a name says whose memory, not what about: the words are weighed without it
            names = query_terms(" ".join(people.values())).indices
            content = relevance.content_terms(terms, REQUEST_TERMS | set(names))
            known = relevance.score(found.values(), pooled, content, weights)
        if self.recall.prefer:
            prefer(found.values(), persons, people, self.reading.boost)
        if self.recall.context:
            with_context(found, self.recall.context)
        self.asked = {"known": round(known, 4), **self.reading.to_dict()}
        if people:
            self.asked["people"] = sorted(people)
        return best_first(list(found.values())), rows

    def why(self, c: Candidate) -> dict[str, Any] | None:
        """How a hybrid hit's score came about (None for a single signal's)."""
        if not self.asked:
            return None
        out: dict[str, Any] = {"meaning": round(c.meaning, 4), "words": round(c.words, 4)}
        if c.person is not None:
            out["person"] = c.person
        if c.in_time is not None:
            out["in_time"] = c.in_time
        if c.neighbour:
            out["neighbour"] = round(c.neighbour, 6)
        if c.own is not None:
            out["own"] = round(c.own, 6)
        return out | self.asked

    async def hydrate(
        self, found: list[Candidate], rows: dict[uuid.UUID, Neighboured]
    ) -> tuple[list[RecallHit], int, int]:
        """Page by page, the entries of `found` the truth holds and `flt` accepts, how many it refused and how
        many the truth no longer holds; rows already read are not read again."""
        kept = found if self.min_score is None else [c for c in found if c.score >= self.min_score]
        hits: list[RecallHit] = []
        refused = lost = 0
        start, step = 0, self.limit  # the first page reads what the limit needs (a row costs ~20 us to build)
        while start < len(kept):
            page = kept[start : start + step]
            start, step = start + step, self.limit * 2
            missing = [c.id for c in page if c.id not in rows]
            fetched = await self.recall.store.get_many(self.persona, missing) if missing else {}
            for c in page:
                row = rows.get(c.id)
                entry = row.entry if row is not None else fetched.get(c.id)
                if entry is None:  # the index may lag the truth by milliseconds
                    lost += 1
                    continue
                if not self.flt.accepts(entry):
                    refused += 1
                    continue
                hits.append(RecallHit(entry, c.score, c.dense_rank, c.lexical_rank, self.why(c)))
                if len(hits) == self.limit:
                    return hits, refused, lost
        return hits, refused, lost


def _score(c: Candidate) -> float:
    return c.score

"""A hybrid recall's candidates after `relevance.score`: what the question prefers (the people it names, the time
it names) and what the conversation around a candidate adds. Pure functions, no I/O.

Each step keeps the score in [0, 1] and on the same scale (`relevance.py`), so `min_score` means the same after
them: a candidate the question does not prefer counts 1 / (1 + share) of its relevance, and the neighbours'
lift is an average, (score + share * best neighbour) / (1 + share).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum

from kgents.resonance.protocols import RankedHit
from kgents.synapse.relevance import Candidate
from kgents.synapse.when import TimeSpan

CONTEXT_SHARE = 0.3
"""Share of the better neighbouring memory's score averaged into an entry's (bench/recall.py's dev split: 0.3
beat 0.1 and 0.2 by half a point recall_any@10 on the calibrated scale)."""
PERSON_SHARE = 0.5
"""How much less a memory of someone else counts when the question names a person (dev: 0.3 to 0.5 alike)."""
TIME_SHARE = 0.5
"""How much less a memory observed outside the time the question names counts (dev: + 1 to 1.5 points
recall_any@10; a hard filter only when the question asks nothing but the time)."""


class RecallMode(StrEnum):
    HYBRID = "hybrid"
    DENSE = "dense"
    LEXICAL = "lexical"


def prefer(
    found: Iterable[Candidate],
    persons: Mapping[uuid.UUID, str | None],
    people: Mapping[str, str],
    span: TimeSpan | None,
) -> None:
    """Each candidate's score, less for one that is not of a person the question names (when it names one) and
    for one observed outside the time it names (when it names one), in place. `persons`: whose memory each
    candidate whose row was read is (`who.person_of`); a candidate whose row was not read (beyond the first
    `CONTEXT_DEPTH`) counts as neither."""
    if not people and span is None:
        return
    other, outside = 1.0 / (1.0 + PERSON_SHARE), 1.0 / (1.0 + TIME_SHARE)
    for c in found:
        if people:
            c.person = c.glance is not None and persons.get(c.id) in people
            if not c.person:
                c.score *= other
        if span is not None:
            c.in_time = c.glance is not None and span.contains(c.glance.observed)
            if not c.in_time:
                c.score *= outside


def with_context(found: Mapping[uuid.UUID, Candidate], share: float = CONTEXT_SHARE) -> None:
    """Each entry's score averaged with `share` of the best score among its neighbours (`Candidate.near`: the
    memories observed just before and after it, a conversation's turns), (score + share * best) / (1 + share),
    in place.

    A neighbour counts only through its own place in `found` (the candidates that passed the filters): one that
    is not there lifts nothing, and never appears."""
    lifts = []
    for c in found.values():
        lift = 0.0
        for n in c.near:
            if n is not None and (other := found.get(n)) is not None and other.score > lift:
                lift = other.score
        lifts.append(lift)
    scale = 1.0 + share
    for c, lift in zip(found.values(), lifts, strict=True):
        c.neighbour, c.own = lift, c.score
        c.score = (c.score + share * lift) / scale


def best_first(found: list[Candidate]) -> list[Candidate]:
    """`found` by score, best first (stable: ties keep their order)."""
    found.sort(key=lambda c: -c.score)
    return found


def single(hits: Sequence[RankedHit], mode: RecallMode) -> list[Candidate]:
    """One signal's list as candidates (its own score, its own rank)."""
    dense = mode is RecallMode.DENSE
    return [
        Candidate(h.id, h.score, dense_rank=rank if dense else None, lexical_rank=None if dense else rank)
        for rank, h in enumerate(hits, start=1)
    ]

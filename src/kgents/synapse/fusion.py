"""Fusing the dense and the lexical candidate lists: pure functions, no I/O.

Weighted fusion (the default: it won on bench/recall.py's dev split at every pool depth, at equal weights)
averages the dense cosine and the lexical BM25 score scaled by the best BM25 score of the pool, so both lie in
[0, 1] and so does the fused score. Reciprocal-rank fusion (measured beside it) scores an entry
`Σ w / (K + rank)` over the lists it appears in, divided by its maximum (first on every list), so it lies in
(0, 1] too, and `min_score` means the same whichever fusion.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kgents.resonance.protocols import RankedHit

RRF_K = 60
DENSE_WEIGHT = 1.0
LEXICAL_WEIGHT = 1.0
COVERAGE_POWER = 3.0
CONTEXT_SHARE = 0.1
"""Share of the better neighbouring memory's fused score added to an entry's (bench/recall.py's dev split: 0.1
and 0.2 both reach recall_any@20 76; 0.2 loses a holdout paraphrase from the top 3, 0.1 none)."""


class RecallMode(StrEnum):
    HYBRID = "hybrid"
    DENSE = "dense"
    LEXICAL = "lexical"


class Fusion(StrEnum):
    RRF = "rrf"
    WEIGHTED = "weighted"


@dataclass(slots=True)
class Fused:
    """One candidate after fusion (not frozen, like `RankedHit`: a recall builds hundreds)."""

    id: uuid.UUID
    score: float
    """The fused score in (0, 1] (the signal's own score for a single-signal recall)."""
    dense_rank: int | None = None
    lexical_rank: int | None = None
    """1-based ranks in each signal's candidate pool (None: not in that pool)."""


def fuse(
    dense: Sequence[RankedHit],
    lexical: Sequence[RankedHit],
    fusion: Fusion = Fusion.WEIGHTED,
    *,
    k: int = RRF_K,
    dense_weight: float = DENSE_WEIGHT,
    lexical_weight: float = LEXICAL_WEIGHT,
    coverage_power: float = COVERAGE_POWER,
) -> list[Fused]:
    """Both lists merged, best first (ties: the order the entries were first seen, dense list first)."""
    rrf = fusion is Fusion.RRF
    if rrf:
        scale = (dense_weight if dense else 0.0) / (k + 1) + (lexical_weight if lexical else 0.0) / (k + 1)
    else:
        scale = dense_weight + lexical_weight
    best = max((h.score for h in lexical), default=0.0) or 1.0
    # entry id → [fused score, dense rank, lexical rank]; a dict keeps the order entries were first seen
    merged: dict[uuid.UUID, list[Any]] = {}
    for rank, hit in enumerate(dense, start=1):
        if hit.id not in merged:
            value = dense_weight / (k + rank) if rrf else dense_weight * max(0.0, hit.score)
            merged[hit.id] = [value, rank, None]
    for rank, hit in enumerate(lexical, start=1):
        row = merged.get(hit.id)
        if row is None:
            row = merged[hit.id] = [0.0, None, None]
        elif row[2] is not None:
            continue
        if rrf:
            row[0] += lexical_weight / (k + rank)
        else:
            row[0] += lexical_weight * (hit.score / best * hit.coverage**coverage_power)
        row[2] = rank
    ordered = sorted(merged.items(), key=lambda item: -item[1][0])  # stable: ties keep the order first seen
    return [Fused(i, row[0] / scale if scale else 0.0, row[1], row[2]) for i, row in ordered]


def with_context(
    fused: Sequence[Fused],
    neighbours: Mapping[uuid.UUID, tuple[uuid.UUID | None, uuid.UUID | None]],
    share: float = CONTEXT_SHARE,
) -> list[Fused]:
    """Each entry's score plus `share` of the best fused score among its neighbours (the memories observed just
    before and after it: a conversation's turns), divided by 1 + share so it stays in (0, 1], best first.

    A neighbour counts only through its own place in `fused` (the candidates that passed the filters): one that
    is not there lifts nothing, and never appears."""
    scores = {f.id: f.score for f in fused}
    lifted = []
    for f in fused:
        lift = 0.0
        for n in neighbours.get(f.id, ()):
            if n is not None and (s := scores.get(n, 0.0)) > lift:
                lift = s
        lifted.append(Fused(f.id, (f.score + share * lift) / (1.0 + share), f.dense_rank, f.lexical_rank))
    return sorted(lifted, key=lambda f: -f.score)  # stable: ties keep the fused order


def single(hits: Sequence[RankedHit], mode: RecallMode) -> list[Fused]:
    """One signal's list as fused hits (its own score, its own rank)."""
    return [
        Fused(
            h.id,
            h.score,
            rank if mode is RecallMode.DENSE else None,
            rank if mode is RecallMode.LEXICAL else None,
        )
        for rank, h in enumerate(hits, start=1)
    ]

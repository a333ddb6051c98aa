"""Fusing the dense and the lexical candidate lists: pure functions, no I/O.

Weighted fusion (the default: it won on bench/recall.py's dev split at every pool depth, at equal weights)
averages the dense cosine and the lexical BM25 score scaled by the best BM25 score of the pool, so both lie in
[0, 1] and so does the fused score. Reciprocal-rank fusion (measured beside it) scores an entry
`Σ w / (K + rank)` over the lists it appears in, divided by its maximum (first on every list), so it lies in
(0, 1] too, and `min_score` means the same whichever fusion.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

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


@dataclass(frozen=True, slots=True)
class Ranked:
    """One hit of one signal: its id and the signal's own score (cosine, or BM25)."""

    id: uuid.UUID
    score: float
    coverage: float = 1.0
    """Lexical hits: the share of the query's terms the entry holds."""


@dataclass(frozen=True, slots=True)
class Fused:
    id: uuid.UUID
    score: float
    """The fused score in (0, 1] (the signal's own score for a single-signal recall)."""
    dense_rank: int | None = None
    lexical_rank: int | None = None
    """1-based ranks in each signal's candidate pool (None: not in that pool)."""


def _signal(score: float, rank: int, weight: float, k: int, fusion: Fusion) -> float:
    return weight / (k + rank) if fusion is Fusion.RRF else weight * score


def fuse(
    dense: Sequence[Ranked],
    lexical: Sequence[Ranked],
    fusion: Fusion = Fusion.WEIGHTED,
    *,
    k: int = RRF_K,
    dense_weight: float = DENSE_WEIGHT,
    lexical_weight: float = LEXICAL_WEIGHT,
    coverage_power: float = COVERAGE_POWER,
) -> list[Fused]:
    """Both lists merged, best first (ties: the order the entries were first seen, dense list first)."""
    if fusion is Fusion.RRF:
        scale = (dense_weight if dense else 0.0) / (k + 1) + (lexical_weight if lexical else 0.0) / (k + 1)
    else:
        scale = dense_weight + lexical_weight
    best = max((h.score for h in lexical), default=0.0) or 1.0
    # entry id → [fused score, dense rank, lexical rank, first seen]
    merged: dict[uuid.UUID, list[Any]] = {}
    for rank, hit in enumerate(dense, start=1):
        if hit.id not in merged:
            merged[hit.id] = [_signal(max(0.0, hit.score), rank, dense_weight, k, fusion), rank, None, len(merged)]
    for rank, hit in enumerate(lexical, start=1):
        row = merged.get(hit.id)
        if row is None:
            row = merged[hit.id] = [0.0, None, None, len(merged)]
        elif row[2] is not None:
            continue
        row[0] += _signal(hit.score / best * hit.coverage**coverage_power, rank, lexical_weight, k, fusion)
        row[2] = rank
    ordered = sorted(merged.items(), key=lambda item: (-item[1][0], item[1][3]))
    return [Fused(i, row[0] / scale if scale else 0.0, row[1], row[2]) for i, row in ordered]


def with_context(
    fused: Sequence[Fused],
    neighbours: dict[uuid.UUID, tuple[uuid.UUID | None, uuid.UUID | None]],
    share: float = CONTEXT_SHARE,
) -> list[Fused]:
    """Each entry's score plus `share` of the best fused score among its neighbours (the memories observed just
    before and after it: a conversation's turns), divided by 1 + share so it stays in (0, 1], best first.

    A neighbour counts only through its own place in `fused` (the candidates that passed the filters): one that
    is not there lifts nothing, and never appears."""
    scores = {f.id: f.score for f in fused}
    lifted = [
        Fused(
            f.id,
            (f.score + share * max((scores.get(n, 0.0) for n in neighbours.get(f.id, ()) if n), default=0.0))
            / (1.0 + share),
            f.dense_rank,
            f.lexical_rank,
        )
        for f in fused
    ]
    return sorted(lifted, key=lambda f: -f.score)  # stable: ties keep the fused order


def single(hits: Sequence[Ranked], mode: RecallMode) -> list[Fused]:
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

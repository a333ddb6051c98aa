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

RRF_K = 60
DENSE_WEIGHT = 1.0
LEXICAL_WEIGHT = 1.0
COVERAGE_POWER = 3.0


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


def _ranks(hits: Sequence[Ranked]) -> dict[uuid.UUID, tuple[int, float, float]]:
    out: dict[uuid.UUID, tuple[int, float, float]] = {}
    for rank, hit in enumerate(hits, start=1):
        out.setdefault(hit.id, (rank, hit.score, hit.coverage))
    return out


def _order(ids: set[uuid.UUID], scores: dict[uuid.UUID, float], first_seen: list[uuid.UUID]) -> list[uuid.UUID]:
    position = {i: n for n, i in enumerate(first_seen)}
    return sorted(ids, key=lambda i: (-scores[i], position[i]))


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
    d, lx = _ranks(dense), _ranks(lexical)
    seen = list(dict.fromkeys([h.id for h in dense] + [h.id for h in lexical]))
    scores: dict[uuid.UUID, float] = {}
    if fusion is Fusion.RRF:
        top = (dense_weight if dense else 0.0) / (k + 1) + (lexical_weight if lexical else 0.0) / (k + 1)
        for i in seen:
            total = 0.0
            if i in d:
                total += dense_weight / (k + d[i][0])
            if i in lx:
                total += lexical_weight / (k + lx[i][0])
            scores[i] = total / top if top else 0.0
    else:
        best = max((s for _, s, _ in lx.values()), default=0.0) or 1.0
        weight = dense_weight + lexical_weight
        for i in seen:
            cosine = max(0.0, d[i][1]) if i in d else 0.0
            bm25 = lx[i][1] / best * lx[i][2] ** coverage_power if i in lx else 0.0
            scores[i] = (dense_weight * cosine + lexical_weight * bm25) / weight
    return [
        Fused(i, scores[i], d[i][0] if i in d else None, lx[i][0] if i in lx else None)
        for i in _order(set(seen), scores, seen)
    ]


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

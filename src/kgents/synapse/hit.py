"""`RecallHit`: one recalled entry, the one hit type every face answers (made by the recall walk, `recall.py`).
Light on purpose: the thin HTTP client imports it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kgents.garden.model import GardenEntry


@dataclass(frozen=True, slots=True)
class RecallHit:
    """One recalled entry, hydrated from the truth, with the score that ranked it and each signal's rank (None
    where that signal did not find it, or where the caller did not ask how the score came about)."""

    entry: GardenEntry
    score: float
    dense_rank: int | None = None
    lexical_rank: int | None = None
    why: Mapping[str, Any] | None = None
    """What else says how the score came about (hybrid: meaning, words, known, relevance, person, in_time,
    neighbour; and what the query was read as: its time, the people it names)."""

    @property
    def explain(self) -> dict[str, Any]:
        """How the score came about (each signal's rank, the score, `why`), or {} where nobody asked."""
        if self.dense_rank is None and self.lexical_rank is None and not self.why:
            return {}
        ranks = {"dense_rank": self.dense_rank, "lexical_rank": self.lexical_rank}
        return {**ranks, "fused": self.score, **(self.why or {})}

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"score": round(self.score, 6), **self.entry.to_dict()}
        if explain := self.explain:
            found["explain"] = explain
        return found

"""The embedded index's HNSW graph: how many dense vectors lie outside it, and its state for `status`.

The engine's `indexed_vectors_count` adds the lexical (sparse) vectors to the dense vectors in a graph: a
non-empty sparse vector is always indexed (an inverted index), an empty one never. So, for a collection that
keeps the lexical signal,

    dense vectors in the graph = indexed - (points with a non-empty lexical vector) = indexed - points + gap

where `gap` counts the points without a non-empty lexical vector (no content word, or a lexical vector lost).
Taking `points - indexed` as the unindexed count (as before issue 17) found almost nothing unindexed, so the
automatic build never started. The build's child counts the gap exactly on the copy it optimised (a full
scroll, off this process); the empty ones inserted since are added as they are written; the meta file keeps it
across restarts. Before the first build there is no graph and no gap is needed: every dense vector is outside.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from kgents.resonance.edge_build import Built
from kgents.resonance.protocols import IndexGraph

GRAPH_META = "kgents_graph"
"""The meta file's key for what `GraphBook` keeps across restarts."""
SECONDS_PER_POINT = 1.0e-3
"""The graph phase's pace before any build was measured (256-d, m=16, one core of a busy 2-core machine)."""


@dataclass(slots=True)
class GraphBook:
    """What this process knows of a collection's graph beside the engine's counters."""

    gap: int | None
    """Points without a non-empty lexical vector (None: no graph was ever built, so none is in one)."""
    last_build_s: float | None = None
    last_pause_s: float | None = None
    pause_s: float = 0.0
    """This build's time with writes waiting (the copy, the swap)."""
    seconds_per_point: float = SECONDS_PER_POINT
    phase: str | None = None
    started: float | None = None
    phase_started: float | None = None
    points_at_copy: int = 0
    empty_written: int = 0
    """Points inserted with an empty lexical vector, in this process (the gap they add)."""
    empty_at_copy: int = 0

    @classmethod
    def from_meta(cls, meta: dict[str, Any], lexical: bool, points: int, indexed: int) -> GraphBook:
        kept = meta.get(GRAPH_META)
        if isinstance(kept, dict):
            gap = kept.get("gap")
            return cls(
                gap=None if gap is None else int(gap),
                last_build_s=kept.get("last_build_s"),
                last_pause_s=kept.get("last_pause_s"),
                seconds_per_point=float(kept.get("seconds_per_point") or SECONDS_PER_POINT),
            )
        # No record: a graph exists only if an older kgents built one, which shows as more indexed vectors
        # than points (dense + sparse); its gap is unknown (0: an overestimate by the empty ones, until a build).
        return cls(gap=0 if lexical and indexed > points else None)

    def to_meta(self) -> dict[str, Any]:
        gap = None if self.gap is None else self.gap + self.empty_written - self.empty_at_copy
        return {
            "gap": gap,
            "last_build_s": self.last_build_s,
            "last_pause_s": self.last_pause_s,
            "seconds_per_point": self.seconds_per_point,
        }

    def in_graph(self, points: int, indexed: int, lexical: bool) -> int:
        """Dense vectors in the graph, from the engine's counters."""
        if not lexical:
            return max(0, min(points, indexed))
        if self.gap is None:
            return 0
        gap = self.gap + self.empty_written - self.empty_at_copy
        return max(0, min(points, indexed - points + gap))

    def outside(self, points: int, indexed: int, lexical: bool) -> int:
        """Dense vectors outside the graph (searched exactly)."""
        return points - self.in_graph(points, indexed, lexical)

    def enter(self, phase: str, points: int | None = None) -> None:
        now = time.monotonic()
        if phase == "copy":
            self.started, self.pause_s = now, 0.0
        elif self.phase == "copy" and self.phase_started is not None:
            self.pause_s += now - self.phase_started
        if points is not None:
            self.points_at_copy = points
            self.empty_at_copy = self.empty_written
        self.phase, self.phase_started = phase, now

    def built(self, built: Built, lexical: bool) -> None:
        """Take the child's counts of the copy it optimised; the empty ones written since are added by
        `empty_written - empty_at_copy`."""
        if self.phase_started is not None and built.points:
            self.seconds_per_point = max(1e-6, (time.monotonic() - self.phase_started) / built.points)
        if lexical:
            self.gap = built.points - built.lexical

    def finished(self, swapped: bool) -> None:
        now = time.monotonic()
        if swapped and self.started is not None and self.phase_started is not None:
            self.last_build_s = round(now - self.started, 3)
            self.last_pause_s = round(self.pause_s + now - self.phase_started, 3)  # the copy and the swap
        self.phase = self.started = self.phase_started = None

    def state(self, points: int, indexed: int, lexical: bool, builds_after: int | None) -> IndexGraph:
        in_graph = self.in_graph(points, indexed, lexical)
        counts = (points, in_graph, points - in_graph, builds_after)
        if self.phase is None or self.started is None:
            state = "built" if in_graph else "plain"
            return IndexGraph(state, *counts, last_build_s=self.last_build_s, last_pause_s=self.last_pause_s)
        now = time.monotonic()
        return IndexGraph(
            "building",
            *counts,
            phase=self.phase,
            progress=self.progress(now),
            elapsed_s=round(now - self.started, 3),
            last_build_s=self.last_build_s,
            last_pause_s=self.last_pause_s,
        )

    def progress(self, now: float) -> float:
        """The estimated share of the build done: the copy is the first 5 %, the graph up to 99 % at the
        last build's pace, the swap what remains."""
        if self.phase == "copy" or self.phase_started is None:
            return 0.0
        if self.phase == "swap":
            return 0.99
        expected = max(1.0, self.points_at_copy * self.seconds_per_point)
        return round(min(0.99, 0.05 + 0.94 * (now - self.phase_started) / expected), 3)

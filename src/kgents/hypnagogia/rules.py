"""The dream's written rules, as constants and small pure functions (README, "The K-gent: chat and dream")."""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence

from kgents.garden.dream_ledger import DecayRule
from kgents.garden.model import MAX_EVIDENCE_ITEMS, GardenEntry

STALE_DAYS = 30
DECAY_PER_DAY = 0.01
COMPOST_FLOOR = 0.1
DECAY = DecayRule(stale_days=STALE_DAYS, per_day=DECAY_PER_DAY, floor=COMPOST_FLOOR)
"""An entry not nurtured for 30 days loses 0.01 for each further day; below 0.1 it composts."""
NUDGE_BOUND = 0.05
CLUSTER_MIN = 3
PROMOTED_MIN = 0.7
PROMOTED_MAX = 0.89


def aggregate(confidences: Sequence[float]) -> float:
    """Independent evidence combined (noisy-or), held between TREE and just below FLOWER."""
    doubt = math.prod(1.0 - c for c in confidences)
    return round(min(PROMOTED_MAX, max(PROMOTED_MIN, 1.0 - doubt)), 6)


def clusters(
    entries: Sequence[GardenEntry], near: Mapping[uuid.UUID, set[uuid.UUID]], fresh: set[uuid.UUID] | None = None
) -> list[list[GardenEntry]]:
    """Groups of CLUSTER_MIN or more mutually similar entries, strongest first in each; an entry is in one group;
    with `fresh`, a group needs one of those (what changed since the last dream)."""
    used: set[uuid.UUID] = set()
    found: list[list[GardenEntry]] = []
    ranked = sorted(entries, key=lambda e: (-e.confidence, -len(e.evidence), str(e.id)))
    for seed in ranked:
        if seed.id in used:
            continue
        group = [seed]
        for other in ranked:
            if other.id in used or other.id == seed.id:
                continue
            if all(other.id in near.get(m.id, set()) and m.id in near.get(other.id, set()) for m in group):
                group.append(other)
        if len(group) >= CLUSTER_MIN and (fresh is None or any(e.id in fresh for e in group)):
            found.append(group)
            used.update(e.id for e in group)
    return found


def merged_evidence(group: Sequence[GardenEntry]) -> list[str]:
    """What the others of a group add to the winner's evidence (their evidence, or their words), the newest kept
    within the evidence limit with room for the line that says so."""
    winner = group[0]
    known = set(winner.evidence)
    lines = [line for other in group[1:] for line in (other.evidence or (other.content,)) if line not in known]
    unique = list(dict.fromkeys(lines))
    lines = [*unique, f"consolidated {len(group)} similar entries"]
    return lines[-MAX_EVIDENCE_ITEMS:]


def shifts_for(learned: Sequence[GardenEntry], current: Mapping[str, tuple[float, float]]) -> dict[str, float]:
    """Axis → shift toward the confidence-weighted affinity of what was learned, bounded by NUDGE_BOUND."""
    weights: dict[str, tuple[float, float]] = {}
    for e in learned:
        for axis, lean in e.eigenvector_affinities.items():
            total, weight = weights.get(axis, (0.0, 0.0))
            weights[axis] = (total + lean * e.confidence, weight + e.confidence)
    shifts: dict[str, float] = {}
    for axis, (total, weight) in weights.items():
        if axis not in current or weight <= 0:
            continue
        delta = max(-NUDGE_BOUND, min(NUDGE_BOUND, total / weight - current[axis][0]))
        if abs(delta) >= 1e-6:
            shifts[axis] = round(delta, 6)
    return shifts

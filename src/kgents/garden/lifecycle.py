"""The written rules of how an entry grows, as small pure functions.

- Growth only goes forward: SEED → SAPLING → TREE → FLOWER (a stage may be skipped, never revisited).
- Anything may go to COMPOST.
- COMPOST is terminal; only an explicit revive brings an entry back, as a SEED.
- Nurture promotes by confidence (≥0.9 FLOWER, ≥0.7 TREE, ≥0.4 SAPLING) and never demotes.
"""

from __future__ import annotations

from kgents.errors import LifecycleError
from kgents.garden.model import Lifecycle

GROWTH_ORDER: tuple[Lifecycle, ...] = (Lifecycle.SEED, Lifecycle.SAPLING, Lifecycle.TREE, Lifecycle.FLOWER)

PROMOTION_THRESHOLDS: tuple[tuple[float, Lifecycle], ...] = (
    (0.9, Lifecycle.FLOWER),
    (0.7, Lifecycle.TREE),
    (0.4, Lifecycle.SAPLING),
)

NURTURE_STEP = 0.05
"""Confidence added by a nurture that names no explicit change."""


def stage_for_confidence(confidence: float) -> Lifecycle:
    for threshold, stage in PROMOTION_THRESHOLDS:
        if confidence >= threshold:
            return stage
    return Lifecycle.SEED


def is_transition_allowed(current: Lifecycle, target: Lifecycle, *, revive: bool = False) -> bool:
    if current is Lifecycle.COMPOST:
        return revive and target is Lifecycle.SEED
    if target is Lifecycle.COMPOST:
        return True
    return GROWTH_ORDER.index(target) > GROWTH_ORDER.index(current)


def check_transition(current: Lifecycle, target: Lifecycle, *, revive: bool = False) -> Lifecycle:
    if is_transition_allowed(current, target, revive=revive):
        return target
    if current is Lifecycle.COMPOST:
        raise LifecycleError(f"a COMPOST entry is terminal; revive it to SEED (asked for {target.value})")
    if current is target:
        raise LifecycleError(f"the entry is already {current.value}")
    raise LifecycleError(
        f"cannot go from {current.value} to {target.value}: growth only moves forward"
        " (SEED → SAPLING → TREE → FLOWER) or to COMPOST"
    )


def next_stage(current: Lifecycle) -> Lifecycle:
    """The stage `grow` moves to."""
    if current is Lifecycle.COMPOST:
        raise LifecycleError("a COMPOST entry does not grow; revive it first")
    if current is Lifecycle.FLOWER:
        raise LifecycleError("a FLOWER is fully grown; the only way on is COMPOST")
    return GROWTH_ORDER[GROWTH_ORDER.index(current) + 1]


def promoted(current: Lifecycle, confidence: float) -> Lifecycle:
    """The stage after a nurture: `current`, or further along if confidence has earned it."""
    if current is Lifecycle.COMPOST:
        return current
    earned = stage_for_confidence(confidence)
    return earned if GROWTH_ORDER.index(earned) > GROWTH_ORDER.index(current) else current

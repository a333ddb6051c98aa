"""`HypnagogicCycle.dream()`: consolidate what was learned while the user is away.

1. Cluster: 3 or more live entries (same polarity) that all say the same thing as each other (`says_the_same`:
   dense cosine at the measured threshold and the same specifics, so "client 1" and "client 2" never merge), one
   of them learned since the last dream → the strongest is promoted (aggregated confidence, at least TREE), the
   others nurture it with their evidence and compost with a pointer to it. The index is caught up first and each
   entry's neighbours are all it holds at that score, so a second dream sees the same neighbours and no new group;
   entries a dream weighed and left apart are not weighed again until something new joins them.
2. Decay: an entry not nurtured for STALE_DAYS loses DECAY_PER_DAY for each further day (the day decayed through is
   kept in a `decayed:YYYY-MM-DD` tag, so a day is never counted twice); its stage follows its confidence both
   ways; below COMPOST_FLOOR it composts.
3. Nudge the soul's eigenvectors toward the affinities of what was learned since the last dream, each axis by at
   most NUDGE_BOUND. What a dream has consumed is tagged `dreamt`, so dreaming twice changes nothing the second time.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kgents.clock import utcnow
from kgents.garden.filters import EntryFilter
from kgents.garden.model import GardenEntry, Lifecycle
from kgents.garden.service import SUPERSEDED_BY
from kgents.kgent.learn import polarity_of
from kgents.kgent.sameness import SAME_THRESHOLD, says_the_same
from kgents.memory.api import MemoryAPI

STALE_DAYS = 30
DECAY_PER_DAY = 0.01
COMPOST_FLOOR = 0.1
NUDGE_BOUND = 0.05
CLUSTER_MIN = 3
PROMOTED_MIN = 0.7
PROMOTED_MAX = 0.89
DREAMT_TAG = "dreamt"
DECAYED = "decayed:"
NEIGHBOURS = 200
"""Recall's most hits: an entry's neighbours are every entry the index finds at the threshold (its pool is 100), so
composting some of them never lets others into a later dream's view."""
CATCH_UP_S = 60.0
"""How long a dream in the process that owns the embedded index applies pending outbox events before it looks."""
SCAN_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class DreamResult:
    learned: int = 0
    nurtured: int = 0
    promoted: tuple[str, ...] = ()
    superseded: int = 0
    composted: tuple[str, ...] = ()
    shifts: Mapping[str, float] = field(default_factory=dict)
    decayed: int = 0
    dry_run: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.nurtured or self.promoted or self.composted or self.decayed or self.shifts or self.learned)

    def to_dict(self) -> dict[str, Any]:
        return {
            "learned": self.learned,
            "nurtured": self.nurtured,
            "promoted": list(self.promoted),
            "superseded": self.superseded,
            "composted": list(self.composted),
            "decayed": self.decayed,
            "eigenvector_shifts": dict(self.shifts),
            "dry_run": self.dry_run,
        }


def aggregate(confidences: Sequence[float]) -> float:
    """Independent evidence combined (noisy-or), held between TREE and just below FLOWER."""
    doubt = math.prod(1.0 - c for c in confidences)
    return round(min(PROMOTED_MAX, max(PROMOTED_MIN, 1.0 - doubt)), 6)


def clusters(
    entries: Sequence[GardenEntry], near: Mapping[uuid.UUID, set[uuid.UUID]], fresh: set[uuid.UUID] | None = None
) -> list[list[GardenEntry]]:
    """Groups of CLUSTER_MIN or more mutually similar entries, strongest first in each; an entry is in one group;
    with `fresh`, a group needs one of those (what was learned since the last dream)."""
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


def decay_plan(entry: GardenEntry, now: datetime) -> tuple[float, datetime] | None:
    """(new confidence, day decayed through) for an entry stale at `now`, or None."""
    stale_from = entry.nurtured_at + timedelta(days=STALE_DAYS)
    done = [
        datetime.fromisoformat(t[len(DECAYED) :]).replace(tzinfo=now.tzinfo)
        for t in entry.tags
        if t.startswith(DECAYED)
    ]
    start = max([stale_from, *done])
    days = (now - start).days
    if days < 1:
        return None
    return round(max(0.0, entry.confidence - DECAY_PER_DAY * days), 6), start + timedelta(days=days)


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


class HypnagogicCycle:
    def __init__(self, memory: MemoryAPI, *, threshold: float = SAME_THRESHOLD) -> None:
        self.memory = memory
        self.threshold = threshold

    async def _neighbours(self, live: Sequence[GardenEntry], fresh: set[uuid.UUID]) -> dict[uuid.UUID, set[uuid.UUID]]:
        """What each entry says the same thing as, for the entries a group could hold: a group needs a fresh entry,
        so its members are a fresh entry and its neighbours; the rest of the garden is not asked about."""
        by_id = {e.id: e for e in live}
        near = {i: await self._near(by_id[i]) for i in fresh if i in by_id}
        for i in (set().union(*near.values()) - near.keys()) & by_id.keys():
            near[i] = await self._near(by_id[i])
        return near

    async def _near(self, entry: GardenEntry) -> set[uuid.UUID]:
        hits = await self.memory.recall(entry.content, limit=NEIGHBOURS, mode="dense", min_score=self.threshold)
        return {
            h.entry.id
            for h in hits
            if h.entry.id != entry.id
            and polarity_of(h.entry) == polarity_of(entry)
            and says_the_same(entry.content, h.entry.content, h.score, self.threshold)
        }

    async def dream(self, *, now: datetime | None = None, dry_run: bool = False) -> DreamResult:
        now = now or utcnow()
        m = self.memory
        await caught_up(m)
        live = await m.list(limit=SCAN_LIMIT)
        learned = [e for e in live if DREAMT_TAG not in e.tags]
        gone = await m.list(EntryFilter(lifecycles=(Lifecycle.COMPOST,)), limit=SCAN_LIMIT)
        superseded = [e for e in gone if DREAMT_TAG not in e.tags and any(t.startswith(SUPERSEDED_BY) for t in e.tags)]
        fresh = {e.id for e in learned}
        groups = clusters(live, await self._neighbours(live, fresh), fresh)
        soul = await m.soul()
        shifts = shifts_for(learned, soul.eigenvectors)
        in_groups = {e.id for g in groups for e in g}
        decays = {e.id: p for e in live if e.id not in in_groups and (p := decay_plan(e, now)) is not None}
        composted = [str(o.id) for g in groups for o in g[1:]]
        composted += [str(i) for i, (c, _) in decays.items() if c < COMPOST_FLOOR]
        result = DreamResult(
            learned=len(learned),
            nurtured=sum(len(g) - 1 for g in groups),
            promoted=tuple(str(g[0].id) for g in groups),
            superseded=len(superseded),
            composted=tuple(composted),
            shifts=shifts,
            decayed=len(decays),
            dry_run=dry_run,
        )
        if dry_run:
            return result
        for group in groups:
            await self._promote(group)
        by_id = {e.id: e for e in live}
        for entry_id, (level, through) in decays.items():
            await self._decay(by_id[entry_id], level, through)
        if shifts:
            await m.nudge(shifts)
        consumed = {e.id for e in learned} - {i for i, (c, _) in decays.items() if c < COMPOST_FLOOR}
        for entry_id in [*consumed, *(e.id for e in superseded)]:
            current = await m.get(entry_id)
            if DREAMT_TAG not in current.tags:
                await m.update(entry_id, tags=[*current.tags, DREAMT_TAG])
        return result

    async def _promote(self, group: list[GardenEntry]) -> None:
        winner, others = group[0], group[1:]
        level = aggregate([e.confidence for e in group])
        for other in others:
            for line in other.evidence or (other.content,):
                await self.memory.nurture(winner.id, evidence=line, delta=0.0)
        await self.memory.nurture(winner.id, confidence=level, evidence=f"consolidated {len(group)} similar entries")
        for other in others:
            await self.memory.compost(other.id, successor=winner.id, evidence="merged while dreaming")

    async def _decay(self, entry: GardenEntry, level: float, through: datetime) -> None:
        if level < COMPOST_FLOOR:
            await self.memory.compost(
                entry.id, evidence=f"decayed to {level:.2f}: not nurtured since {entry.nurtured_at:%Y-%m-%d}"
            )
            return
        tags = [t for t in entry.tags if not t.startswith(DECAYED)] + [f"{DECAYED}{through:%Y-%m-%dT%H:%M:%S}"]
        await self.memory.update(entry.id, tags=tags)
        await self.memory.reassess(entry.id, confidence=level, evidence=f"decayed to {level:.2f}")


async def caught_up(memory: MemoryAPI) -> None:
    """Apply the outbox to the embedded index when this process owns it (`kgents garden plant` leaves its writes
    for the index's owner), so the dream sees every entry; a server or a relay keeps its own index in step."""
    from kgents.memory.local import AsyncMemory

    if isinstance(memory, AsyncMemory) and memory.synapse.in_process:
        await memory.synapse.catch_up(CATCH_UP_S)

"""Coherency measured, not estimated: every (entry id, version) of the anchor against every point of the
index.

Definitions (over all personas of one anchor and the active collection):
- matched: id in both with the same version;  stale: in both, versions differ;
- missing: in the anchor only;  orphaned: in the index only;
- total = |anchor ids | index ids| (the union) = matched + stale + missing + orphaned;
- coherency_with_truth = matched / total, and 1.0 when both are empty (nothing to disagree about).
Counting orphans in the total means an index full of deleted entries is not "coherent" just because every live
entry is present. `reconcile` repairs each class through the relay's own state-based apply.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kgents.clock import utcnow
from kgents.resonance.protocols import VectorIndex
from kgents.synapse.apply import EmbedderResolver, apply_to_target
from kgents.synapse.queue import RelayQueue
from kgents.synapse.records import IndexState, Target

SAMPLE_IDS = 5
REPAIR_CHUNK = 256


@dataclass(frozen=True, slots=True)
class CoherencyReport:
    collection: str
    anchor_entries: int
    index_points: int
    matched: int
    stale: int
    missing: int
    orphaned: int
    measured_at: datetime
    samples: dict[str, list[str]] = field(default_factory=dict)
    stale_ids: frozenset[uuid.UUID] = frozenset()
    missing_ids: frozenset[uuid.UUID] = frozenset()
    orphaned_ids: frozenset[uuid.UUID] = frozenset()
    ahead_ids: frozenset[uuid.UUID] = frozenset()
    """Stale points whose index version is *newer* than the anchor's (e.g. the anchor was restored)."""

    @property
    def total(self) -> int:
        return self.matched + self.stale + self.missing + self.orphaned

    @property
    def coherency_with_truth(self) -> float:
        return 1.0 if self.total == 0 else self.matched / self.total

    @property
    def coherent(self) -> bool:
        return self.matched == self.total

    def to_dict(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "anchor_entries": self.anchor_entries,
            "index_points": self.index_points,
            "matched": self.matched,
            "stale": self.stale,
            "missing": self.missing,
            "orphaned": self.orphaned,
            "total": self.total,
            "coherency_with_truth": self.coherency_with_truth,
            "measured_at": self.measured_at.isoformat(),
            "samples": self.samples,
        }


def compare(
    truth: Mapping[uuid.UUID, tuple[str, int]],
    index: Mapping[uuid.UUID, tuple[str, int]],
    collection: str = "",
    sample_persona: str | None = None,
) -> CoherencyReport:
    """Pure: classify every id of either side. The counts cover every persona; the sample ids only
    `sample_persona`'s (None: no samples, so a report shown to one persona never names another's entries)."""
    matched = 0
    stale: set[uuid.UUID] = set()
    ahead: set[uuid.UUID] = set()
    missing: set[uuid.UUID] = set()
    for entry_id, (_persona, version) in truth.items():
        found = index.get(entry_id)
        if found is None:
            missing.add(entry_id)
        elif found[1] == version:
            matched += 1
        else:
            stale.add(entry_id)
            if found[1] > version:
                ahead.add(entry_id)
    orphaned = {i for i in index if i not in truth}
    samples = sample_ids(
        {"stale": stale, "missing": missing, "orphaned": orphaned},
        lambda i: (truth.get(i) or index.get(i) or ("", 0))[0] == sample_persona,
    )
    return CoherencyReport(
        collection=collection,
        anchor_entries=len(truth),
        index_points=len(index),
        matched=matched,
        stale=len(stale),
        missing=len(missing),
        orphaned=len(orphaned),
        measured_at=utcnow(),
        samples=samples,
        stale_ids=frozenset(stale),
        missing_ids=frozenset(missing),
        orphaned_ids=frozenset(orphaned),
        ahead_ids=frozenset(ahead),
    )


def sample_ids(classes: Mapping[str, set[uuid.UUID]], shown: Callable[[uuid.UUID], bool]) -> dict[str, list[str]]:
    """A few ids of each non-empty class, only those `shown` accepts."""
    picked = {name: sorted(str(i) for i in ids if shown(i))[:SAMPLE_IDS] for name, ids in classes.items()}
    return {name: ids for name, ids in picked.items() if ids}


async def measure(
    queue: RelayQueue, index: VectorIndex, target: Target, sample_persona: str | None = None
) -> CoherencyReport:
    """Read both sides and compare (the index first, so an event landing in between shows as stale, not
    lost); sample ids only of `sample_persona`."""
    points = await index.versions(target.collection)
    truth = await queue.versions()
    return compare(truth, points, target.collection, sample_persona)


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    before: CoherencyReport
    after: CoherencyReport
    repaired: int
    failed: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "repaired": self.repaired,
            "failed": self.failed,
        }


async def repair(
    queue: RelayQueue,
    index: VectorIndex,
    embedders: EmbedderResolver,
    target: Target,
    report: CoherencyReport,
) -> tuple[int, dict[str, str]]:
    """Apply the current rows of every stale, missing or orphaned id to `target`; returns (repaired,
    failures)."""
    if report.ahead_ids:  # the anchor is the truth even when the index believes it is newer
        await index.delete(target.collection, sorted(report.ahead_ids))
    ids = sorted(report.stale_ids | report.missing_ids | report.orphaned_ids)
    embedder = embedders(target.embedder)
    repaired = 0
    failed: dict[str, str] = {}
    for start in range(0, len(ids), REPAIR_CHUNK):
        chunk = ids[start : start + REPAIR_CHUNK]
        current = await queue.current(chunk)
        result = await apply_to_target(index, embedder, target, {i: current.get(i) for i in chunk})
        failed.update({str(i): f"{step}: {error}" for i, (step, error) in result.failed.items()})
        repaired += len(chunk) - len(result.failed)
    return repaired, failed


async def reconcile(
    queue: RelayQueue, index: VectorIndex, embedders: EmbedderResolver, state: IndexState
) -> ReconcileReport:
    """Measure, repair the active collection, measure again."""
    before = await measure(queue, index, state.active)
    repaired, failed = (0, {}) if before.coherent else await repair(queue, index, embedders, state.active, before)
    after = await measure(queue, index, state.active)
    return ReconcileReport(before, after, repaired, failed)

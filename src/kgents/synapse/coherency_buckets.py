"""Coherency measured by bucket: what changed is re-read, the rest is taken from the last measurement.

`measure_changed` reads the change counters of the buckets to re-read (those whose counter moved since they were
measured, or that were not all matched), then their rows and tombstones in the anchor, then the index's points of
those ids (one `retrieve` per chunk, never a scroll), and sums every bucket's counts. It reads the counters first,
so a write landing after them moves the counter again and the bucket is re-read next time; a bucket left stale,
missing or orphaned is re-read every time until it agrees. What no write of the anchor explains (points lost or
added behind the relays' back) shows as a difference between the index's count and the points the buckets
account for: `BucketedCoherency` then measures in full once the outbox is idle. `measure_full` is the full scan
(`kgents synapse status --full`), which also rewrites every bucket's counts.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kgents.clock import utcnow
from kgents.resonance.protocols import VectorIndex
from kgents.synapse.buckets import BUCKETS, classify
from kgents.synapse.coherency import CoherencyReport, compare
from kgents.synapse.queue import RelayQueue
from kgents.synapse.records import Target

log = logging.getLogger("kgents.synapse")

FULL_SHARE = 0.25
"""Past this share of the buckets to re-read, one full sweep costs less than reading them one range at a time."""
RETRIEVE_CHUNK = 1024


@dataclass(frozen=True, slots=True)
class Measured:
    report: CoherencyReport
    buckets_read: int
    """Buckets re-read (all of them for a full measurement)."""
    full: bool
    counted: bool
    """True when the index's point count agrees with the points the buckets account for."""

    def to_dict(self) -> dict[str, Any]:
        """The figure as published and served: the report, the buckets read and whether it was full."""
        return {**self.report.to_dict(), "buckets_read": self.buckets_read, "full": self.full}


async def measure_full(
    queue: RelayQueue, index: VectorIndex, target: Target, sample_persona: str | None = None
) -> Measured:
    """Every (id, version) of both sides compared (the index first), and every bucket's counts rewritten."""
    ledger = queue.buckets()
    counters = await ledger.counters()
    points = await index.versions(target.collection)
    truth = await queue.versions()
    report = compare(truth, points, target.collection, sample_persona)
    rows = classify(counters, truth, points)
    try:  # bookkeeping for the next measurements: a read-only home still gets its figure
        await ledger.bury({i: points[i][1] for i in report.orphaned_ids})
        await ledger.save(target.collection, rows, replace=True)
    except Exception as exc:
        log.debug("synapse: could not keep the buckets' coherency: %s", exc)
    return Measured(report, max(len(rows), len(counters)), full=True, counted=True)


async def measure_changed(
    queue: RelayQueue,
    index: VectorIndex,
    target: Target,
    sample_persona: str | None = None,
    *,
    count: bool = True,
) -> Measured:
    """Re-read only the buckets that changed or disagreed; a full measurement (with sample ids of
    `sample_persona`) when none was ever kept for this collection or when most buckets changed. `count`: check
    the index's point count too (it grows with the index on the embedded one, so a relay checks it less often)."""
    ledger = queue.buckets()
    todo = await ledger.changed(target.collection)
    if len(todo) > FULL_SHARE * BUCKETS or await ledger.measured(target.collection) == 0:
        return await measure_full(queue, index, target, sample_persona)
    if todo:
        truth, buried = await ledger.read([b for b, _ in todo])
        points = await _points(index, target.collection, [*truth, *(buried - truth.keys())])
        try:
            await ledger.save(target.collection, classify(dict(todo), truth, points), replace=False)
        except Exception as exc:  # a read-only home cannot keep buckets: measure in full without them
            log.debug("synapse: could not keep the buckets' coherency: %s", exc)
            return await measure_full(queue, index, target, sample_persona)
    totals = await ledger.totals(target.collection)
    held = totals.matched + totals.stale + totals.orphaned
    report = CoherencyReport(
        collection=target.collection,
        anchor_entries=totals.matched + totals.stale + totals.missing,
        index_points=held,
        matched=totals.matched,
        stale=totals.stale,
        missing=totals.missing,
        orphaned=totals.orphaned,
        measured_at=utcnow(),
    )
    counted = not count or await index.count(target.collection) == held
    return Measured(report, len(todo), full=False, counted=counted)


async def _points(index: VectorIndex, collection: str, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, tuple[str, int]]:
    """(persona, version) of the points the index holds among `ids`; a point without its lexical vector reads as
    version -1 (stale), as in a full scan."""
    found: dict[uuid.UUID, tuple[str, int]] = {}
    for start in range(0, len(ids), RETRIEVE_CHUNK):
        stored = await index.retrieve(collection, list(ids[start : start + RETRIEVE_CHUNK]))
        for entry_id, payload in stored.items():
            found[entry_id] = (payload.persona, payload.version if payload.content_hash else -1)
    return found


class BucketedCoherency:
    """A measurer that keeps going by bucket, checks the index's count at most every `count_every_s` (and at
    once after a disagreement), and measures in full only when the count disagreed twice in a row with the outbox
    idle (so a write applied between two reads never costs a full scan)."""

    def __init__(self, queue: RelayQueue, index: VectorIndex, *, count_every_s: float = 0.0) -> None:
        self.queue = queue
        self.index = index
        self.count_every_s = count_every_s
        self._suspect = False
        self._counted_at: float | None = None

    async def measure(self, target: Target) -> Measured:
        now = time.monotonic()
        due = self._suspect or self._counted_at is None or now - self._counted_at >= self.count_every_s
        measured = await measure_changed(self.queue, self.index, target, count=due)
        if due:
            self._counted_at = now
        if measured.counted:
            self._suspect = False
            return measured
        if self._suspect and await self.queue.queue_depth(1) == 0:
            self._suspect = False
            return await measure_full(self.queue, self.index, target)
        self._suspect = True
        return measured

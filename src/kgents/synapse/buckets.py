"""Coherency by bucket: the garden's ids fall in 4,096 buckets (the id's first three hex digits).

The anchor keeps, per bucket, its entry count and a change counter (`garden_digest`, kept by triggers in the
writing transaction) and what the measuring relay last found there (`coherency_bucket`: the counter it saw and
the matched / stale / missing / orphaned counts). A measurement re-reads only the buckets whose counter moved or
that were not all matched (the anchor's rows and tombstones of the bucket, the index's points of those ids), so
its cost follows what changed, not the size of the garden. Pure helpers here; the ledgers
(`buckets_sqlite`, `buckets_postgres`) read and write the tables.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from kgents.synapse.retention import Cutoffs, Pruned

BUCKET_DIGITS = 3
BUCKETS = 16**BUCKET_DIGITS


@dataclass(frozen=True, slots=True)
class BucketRow:
    """What a measurement found in one bucket, and the bucket's change counter when it was read."""

    bucket: str
    changes: int
    matched: int = 0
    stale: int = 0
    missing: int = 0
    orphaned: int = 0


@dataclass(frozen=True, slots=True)
class StoredFigure:
    """The last coherency figure the measuring relay published, who measured it and when."""

    figures: dict[str, Any]
    measured_at: datetime
    measured_by: str


class BucketLedger(Protocol):
    """Bucketed coherency's ledger on the anchor (`queue.buckets()`)."""

    async def changed(self, collection: str) -> list[tuple[str, int]]:
        """(bucket, change counter now) of every bucket to re-read: its counter moved since it was measured for
        `collection`, it was never measured, or it was not all matched."""
        ...

    async def counters(self) -> dict[str, int]:
        """Every bucket's change counter (read before a full measurement)."""
        ...

    async def measured(self, collection: str) -> int:
        """How many buckets hold a measurement for `collection` (0: measure in full first)."""
        ...

    async def read(self, buckets: Sequence[str]) -> tuple[dict[uuid.UUID, tuple[str, int]], set[uuid.UUID]]:
        """The buckets' rows ((persona, version) by id) and their tombstones' ids (where orphans can be)."""
        ...

    async def save(self, collection: str, rows: Sequence[BucketRow], *, replace: bool) -> None:
        """Store what was found (`replace`: the collection's earlier rows go first, after a full measurement)."""
        ...

    async def bury(self, orphans: Mapping[uuid.UUID, int]) -> None:
        """Tombstones for points found in the index that the anchor never deleted (last version: the point's), so a
        bucket's re-read finds them, and an entry planted under such an id continues above the point's version."""
        ...

    async def prune(self, cut: Cutoffs) -> Pruned:
        """One bounded pass of pruning (`kgents.synapse.retention`)."""
        ...

    async def totals(self, collection: str) -> BucketRow:
        """The sums over every measured bucket of `collection` (bucket '*', changes 0)."""
        ...

    async def take_lease(self, holder: str, ttl_s: float) -> bool:
        """True if `holder` measures: the lease was free, expired or already its own; renewed for `ttl_s`."""
        ...

    async def release(self, holder: str) -> None:
        """Give the lease up (a stopping relay), so another relay measures at its next beat."""
        ...

    async def publish(self, figures: Mapping[str, Any], by: str) -> None:
        """Keep the last figure (a read of it never measures)."""
        ...

    async def figure(self) -> StoredFigure | None: ...


def bucket_of(entry_id: uuid.UUID) -> str:
    return str(entry_id)[:BUCKET_DIGITS]


def bucket_bounds(bucket: str) -> tuple[uuid.UUID, uuid.UUID | None]:
    """The id range of `bucket`: [low, high), high None for the last bucket."""
    number = int(bucket, 16)
    shift = 128 - 4 * BUCKET_DIGITS
    low = uuid.UUID(int=number << shift)
    return low, (None if number + 1 >= BUCKETS else uuid.UUID(int=(number + 1) << shift))


def classify(
    counters: Mapping[str, int],
    truth: Mapping[uuid.UUID, tuple[str, int]],
    index: Mapping[uuid.UUID, tuple[str, int]],
) -> list[BucketRow]:
    """Pure: one row per bucket of `counters` (and per bucket any id falls in), counting each id of either side
    as matched (same version), stale (versions differ), missing (anchor only) or orphaned (index only)."""
    counts: dict[str, list[int]] = {b: [0, 0, 0, 0] for b in counters}
    for entry_id, (_persona, version) in truth.items():
        found = index.get(entry_id)
        slot = 2 if found is None else (0 if found[1] == version else 1)
        counts.setdefault(bucket_of(entry_id), [0, 0, 0, 0])[slot] += 1
    for entry_id in index:
        if entry_id not in truth:
            counts.setdefault(bucket_of(entry_id), [0, 0, 0, 0])[3] += 1
    return [BucketRow(b, counters.get(b, 0), *c) for b, c in sorted(counts.items())]

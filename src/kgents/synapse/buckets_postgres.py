"""The bucket ledger on PostgreSQL (see `kgents.synapse.buckets`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from kgents.clock import utcnow
from kgents.synapse.buckets import BucketRow, StoredFigure, bucket_bounds
from kgents.synapse.retention import Cutoffs, Pruned

_CHANGED = (
    "SELECT d.bucket, d.changes FROM garden_digest d"
    " LEFT JOIN coherency_bucket c ON c.collection = $1 AND c.bucket = d.bucket"
    " WHERE c.bucket IS NULL OR c.changes <> d.changes OR c.stale + c.missing + c.orphaned > 0"
    " UNION SELECT c.bucket, 0 FROM coherency_bucket c WHERE c.collection = $1"
    " AND c.stale + c.missing + c.orphaned > 0"
    " AND NOT EXISTS (SELECT 1 FROM garden_digest d WHERE d.bucket = c.bucket)"
)
_RANGES = (
    "unnest($1::uuid[], $2::uuid[]) AS b(low, high)"
    " JOIN {table} t ON t.id >= b.low AND (b.high IS NULL OR t.id < b.high)"
)
_TOTALS = (
    "SELECT coalesce(sum(matched), 0), coalesce(sum(stale), 0), coalesce(sum(missing), 0),"
    " coalesce(sum(orphaned), 0) FROM coherency_bucket WHERE collection = $1"
)
_SAVE = (
    "INSERT INTO coherency_bucket (collection, bucket, changes, matched, stale, missing, orphaned)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (collection, bucket) DO UPDATE SET changes = excluded.changes,"
    " matched = excluded.matched, stale = excluded.stale, missing = excluded.missing, orphaned = excluded.orphaned"
)
_PRUNE_TOMBSTONES = (
    "DELETE FROM garden_tombstone WHERE id IN (SELECT t.id FROM garden_tombstone t"
    " JOIN coherency_bucket c ON c.collection = $1 AND c.bucket = left(t.id::text, 3)"
    " JOIN garden_digest d ON d.bucket = c.bucket AND d.changes = c.changes"
    " WHERE t.deleted_at < $2 AND c.stale + c.missing + c.orphaned = 0"
    " AND NOT EXISTS (SELECT 1 FROM garden_outbox o WHERE o.entry_id = t.id)"
    " AND NOT EXISTS (SELECT 1 FROM synapse_dead_letter x WHERE x.entry_id = t.id)"
    " AND NOT EXISTS (SELECT 1 FROM synapse_state s WHERE s.pending_collection IS NOT NULL) LIMIT $3)"
)
_PRUNE_DEAD = (
    "DELETE FROM synapse_dead_letter WHERE id IN"
    " (SELECT id FROM synapse_dead_letter WHERE failed_at < $1 ORDER BY failed_at LIMIT $2)"
)
_PRUNE_AUDIT_AGE = (
    "DELETE FROM garden_audit WHERE seq IN"
    " (SELECT seq FROM garden_audit WHERE changed_at < $1 ORDER BY changed_at LIMIT $2)"
)
_PRUNE_AUDIT_ROWS = (
    "DELETE FROM garden_audit WHERE seq IN (SELECT seq FROM garden_audit WHERE seq < coalesce("
    "(SELECT seq FROM garden_audit ORDER BY seq DESC LIMIT 1 OFFSET $1 - 1), 0) ORDER BY seq LIMIT $2)"
)
_LEASE = (
    "UPDATE synapse_coherency SET holder = $1, lease_until = $2"
    " WHERE id = 1 AND (holder IS NULL OR holder = $1 OR lease_until IS NULL OR lease_until < $3)"
)


class PostgresBucketLedger:
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def changed(self, collection: str) -> list[tuple[str, int]]:
        return [(r[0], int(r[1])) for r in await self.pool.fetch(_CHANGED, collection)]

    async def counters(self) -> dict[str, int]:
        return {r[0]: int(r[1]) for r in await self.pool.fetch("SELECT bucket, changes FROM garden_digest")}

    async def measured(self, collection: str) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM coherency_bucket WHERE collection = $1", collection))

    async def read(self, buckets: Sequence[str]) -> tuple[dict[uuid.UUID, tuple[str, int]], set[uuid.UUID]]:
        bounds = [bucket_bounds(b) for b in buckets]
        lows, highs = [b[0] for b in bounds], [b[1] for b in bounds]
        rows = await self.pool.fetch(
            f"SELECT t.id, t.persona, t.version FROM {_RANGES.format(table='persona_garden')}",  # noqa: S608
            lows,
            highs,
        )
        buried = await self.pool.fetch(f"SELECT t.id FROM {_RANGES.format(table='garden_tombstone')}", lows, highs)  # noqa: S608
        return {r[0]: (r[1], int(r[2])) for r in rows}, {r[0] for r in buried}

    async def save(self, collection: str, rows: Sequence[BucketRow], *, replace: bool) -> None:
        params = [(collection, r.bucket, r.changes, r.matched, r.stale, r.missing, r.orphaned) for r in rows]
        async with self.pool.acquire() as conn, conn.transaction():
            if replace:  # other collections' rows go too (a collection reindexed away)
                await conn.execute("DELETE FROM coherency_bucket")
            await conn.executemany(_SAVE, params)

    async def bury(self, orphans: Mapping[uuid.UUID, int]) -> None:
        if orphans:
            await self.pool.executemany(
                "INSERT INTO garden_tombstone (id, last_version) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
                [(i, max(1, v)) for i, v in orphans.items()],
            )

    async def prune(self, cut: Cutoffs) -> Pruned:
        async with self.pool.acquire() as conn, conn.transaction():
            tombstones = _count(await conn.execute(_PRUNE_TOMBSTONES, cut.collection, cut.tombstones_before, cut.limit))
            dead = audit = 0
            if cut.dead_letters_before is not None:
                dead = _count(await conn.execute(_PRUNE_DEAD, cut.dead_letters_before, cut.limit))
            if cut.audit_before is not None:
                audit += _count(await conn.execute(_PRUNE_AUDIT_AGE, cut.audit_before, cut.limit))
            if cut.audit_keep_rows is not None:
                audit += _count(await conn.execute(_PRUNE_AUDIT_ROWS, cut.audit_keep_rows, cut.limit))
        return Pruned(tombstones, dead, audit)

    async def totals(self, collection: str) -> BucketRow:
        r = await self.pool.fetchrow(_TOTALS, collection)
        return BucketRow("*", 0, int(r[0]), int(r[1]), int(r[2]), int(r[3]))

    async def take_lease(self, holder: str, ttl_s: float) -> bool:
        now = utcnow()
        status = await self.pool.execute(_LEASE, holder, now + timedelta(seconds=ttl_s), now)
        return str(status).endswith(" 1")

    async def release(self, holder: str) -> None:
        await self.pool.execute(
            "UPDATE synapse_coherency SET holder = NULL, lease_until = NULL WHERE id = 1 AND holder = $1", holder
        )

    async def publish(self, figures: Mapping[str, Any], by: str) -> None:
        await self.pool.execute(
            "UPDATE synapse_coherency SET figures = $1, measured_at = $2, measured_by = $3 WHERE id = 1",
            json.loads(json.dumps(dict(figures), default=str)),
            utcnow(),
            by,
        )

    async def figure(self) -> StoredFigure | None:
        r = await self.pool.fetchrow("SELECT figures, measured_at, measured_by FROM synapse_coherency WHERE id = 1")
        if r is None or r[0] is None:
            return None
        figures = r[0] if isinstance(r[0], dict) else json.loads(r[0])
        return StoredFigure(figures, r[1], str(r[2]))


def _count(status: str) -> int:
    """The row count of a command status such as 'DELETE 3'."""
    return int(str(status).rsplit(" ", 1)[-1])

"""The bucket ledger on SQLite (see `kgents.synapse.buckets`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from kgents.anchor.sqlite import SqliteAnchor
from kgents.clock import utcnow
from kgents.synapse.buckets import BucketRow, StoredFigure, bucket_bounds
from kgents.synapse.claim_sqlite import ts
from kgents.synapse.retention import Cutoffs, Pruned

_CHANGED = (
    "SELECT d.bucket, d.changes FROM garden_digest d"
    " LEFT JOIN coherency_bucket c ON c.collection = ?1 AND c.bucket = d.bucket"
    " WHERE c.bucket IS NULL OR c.changes <> d.changes OR c.stale + c.missing + c.orphaned > 0"
    " UNION SELECT c.bucket, 0 FROM coherency_bucket c WHERE c.collection = ?1"
    " AND c.stale + c.missing + c.orphaned > 0"
    " AND NOT EXISTS (SELECT 1 FROM garden_digest d WHERE d.bucket = c.bucket)"
)
_RANGES = (
    "json_each(?) b JOIN {table} t ON t.id >= json_extract(b.value, '$[0]') AND t.id < json_extract(b.value, '$[1]')"
)
_TOTALS = (
    "SELECT coalesce(sum(matched), 0), coalesce(sum(stale), 0), coalesce(sum(missing), 0),"
    " coalesce(sum(orphaned), 0) FROM coherency_bucket WHERE collection = ?"
)
_SAVE = (
    "INSERT OR REPLACE INTO coherency_bucket (collection, bucket, changes, matched, stale, missing, orphaned)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_PRUNE_TOMBSTONES = (
    "DELETE FROM garden_tombstone WHERE id IN (SELECT t.id FROM garden_tombstone t"
    " JOIN coherency_bucket c ON c.collection = ?1 AND c.bucket = substr(t.id, 1, 3)"
    " JOIN garden_digest d ON d.bucket = c.bucket AND d.changes = c.changes"
    " WHERE t.deleted_at < ?2 AND c.stale + c.missing + c.orphaned = 0"
    " AND NOT EXISTS (SELECT 1 FROM garden_outbox o WHERE o.entry_id = t.id)"
    " AND NOT EXISTS (SELECT 1 FROM synapse_dead_letter x WHERE x.entry_id = t.id)"
    " AND NOT EXISTS (SELECT 1 FROM synapse_state s WHERE s.pending_collection IS NOT NULL) LIMIT ?3)"
)
_PRUNE_DEAD = (
    "DELETE FROM synapse_dead_letter WHERE id IN"
    " (SELECT id FROM synapse_dead_letter WHERE failed_at < ? ORDER BY failed_at LIMIT ?)"
)
_PRUNE_AUDIT_AGE = (
    "DELETE FROM garden_audit WHERE seq IN"
    " (SELECT seq FROM garden_audit WHERE changed_at < ? ORDER BY changed_at LIMIT ?)"
)
_PRUNE_AUDIT_ROWS = (
    "DELETE FROM garden_audit WHERE seq IN (SELECT seq FROM garden_audit WHERE seq < coalesce("
    "(SELECT seq FROM garden_audit ORDER BY seq DESC LIMIT 1 OFFSET ?1 - 1), 0) ORDER BY seq LIMIT ?2)"
)
_RELEASE = "UPDATE synapse_coherency SET holder = NULL, lease_until = NULL WHERE id = 1 AND holder = ?"
_LEASE = (
    "UPDATE synapse_coherency SET holder = ?1, lease_until = ?2"
    " WHERE id = 1 AND (holder IS NULL OR holder = ?1 OR lease_until IS NULL OR lease_until < ?3)"
)


def _ranges(buckets: Sequence[str]) -> str:
    """The buckets' id ranges as JSON pairs of text bounds ('g' sorts after every lower-case hex id)."""
    pairs = []
    for bucket in buckets:
        low, high = bucket_bounds(bucket)
        pairs.append([str(low), "g" if high is None else str(high)])
    return json.dumps(pairs)


class SqliteBucketLedger:
    def __init__(self, db: SqliteAnchor) -> None:
        self.db = db

    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return await self.db.run(lambda: self.db.conn.execute(sql, params).fetchall())

    async def changed(self, collection: str) -> list[tuple[str, int]]:
        return [(r[0], int(r[1])) for r in await self._fetchall(_CHANGED, (collection,))]

    async def counters(self) -> dict[str, int]:
        return {r[0]: int(r[1]) for r in await self._fetchall("SELECT bucket, changes FROM garden_digest")}

    async def measured(self, collection: str) -> int:
        rows = await self._fetchall("SELECT count(*) FROM coherency_bucket WHERE collection = ?", (collection,))
        return int(rows[0][0])

    async def read(self, buckets: Sequence[str]) -> tuple[dict[uuid.UUID, tuple[str, int]], set[uuid.UUID]]:
        ranges = _ranges(buckets)
        rows = await self._fetchall(
            f"SELECT t.id, t.persona, t.version FROM {_RANGES.format(table='persona_garden')}",  # noqa: S608
            (ranges,),
        )
        buried = await self._fetchall(f"SELECT t.id FROM {_RANGES.format(table='garden_tombstone')}", (ranges,))  # noqa: S608
        truth = {uuid.UUID(r[0]): (r[1], int(r[2])) for r in rows}
        return truth, {uuid.UUID(r[0]) for r in buried}

    async def save(self, collection: str, rows: Sequence[BucketRow], *, replace: bool) -> None:
        params = [(collection, r.bucket, r.changes, r.matched, r.stale, r.missing, r.orphaned) for r in rows]

        def work() -> None:
            with self.db.write(durable=False) as conn:
                if replace:  # other collections' rows go too (a collection reindexed away)
                    conn.execute("DELETE FROM coherency_bucket")
                conn.executemany(_SAVE, params)

        await self.db.run(work)

    async def bury(self, orphans: Mapping[uuid.UUID, int]) -> None:
        params = [(str(i), max(1, v)) for i, v in orphans.items()]

        def work() -> None:
            with self.db.write() as conn:
                conn.executemany("INSERT OR IGNORE INTO garden_tombstone (id, last_version) VALUES (?, ?)", params)

        if params:
            await self.db.run(work)

    async def prune(self, cut: Cutoffs) -> Pruned:
        def work() -> Pruned:
            with self.db.write(durable=False) as conn:
                tombstones = conn.execute(_PRUNE_TOMBSTONES, (cut.collection, ts(cut.tombstones_before), cut.limit))
                done = Pruned(tombstones=int(tombstones.rowcount))
                if cut.dead_letters_before is not None:
                    gone = conn.execute(_PRUNE_DEAD, (ts(cut.dead_letters_before), cut.limit)).rowcount
                    done = Pruned(done.tombstones, int(gone))
                audit = 0
                if cut.audit_before is not None:
                    audit += int(conn.execute(_PRUNE_AUDIT_AGE, (ts(cut.audit_before), cut.limit)).rowcount)
                if cut.audit_keep_rows is not None:
                    audit += int(conn.execute(_PRUNE_AUDIT_ROWS, (cut.audit_keep_rows, cut.limit)).rowcount)
                return Pruned(done.tombstones, done.dead_letters, audit)

        return await self.db.run(work)

    async def totals(self, collection: str) -> BucketRow:
        r = (await self._fetchall(_TOTALS, (collection,)))[0]
        return BucketRow("*", 0, int(r[0]), int(r[1]), int(r[2]), int(r[3]))

    async def take_lease(self, holder: str, ttl_s: float) -> bool:
        now = utcnow()
        params = (holder, ts(now + timedelta(seconds=ttl_s)), ts(now))

        def work() -> bool:
            with self.db.write(durable=False) as conn:
                return int(conn.execute(_LEASE, params).rowcount) == 1

        return await self.db.run(work)

    async def release(self, holder: str) -> None:
        def work() -> None:
            with self.db.write(durable=False) as conn:
                conn.execute(_RELEASE, (holder,))

        await self.db.run(work)

    async def publish(self, figures: Mapping[str, Any], by: str) -> None:
        params = (json.dumps(dict(figures), default=str), ts(utcnow()), by)

        def work() -> None:
            with self.db.write(durable=False) as conn:
                conn.execute(
                    "UPDATE synapse_coherency SET figures = ?, measured_at = ?, measured_by = ? WHERE id = 1", params
                )

        await self.db.run(work)

    async def figure(self) -> StoredFigure | None:
        sql = "SELECT figures, measured_at, measured_by FROM synapse_coherency WHERE id = 1"
        rows = await self.db.read(lambda c: c.execute(sql).fetchall())  # a scrape's read: never behind a write
        if not rows or rows[0][0] is None:
            return None
        return StoredFigure(json.loads(rows[0][0]), datetime.fromisoformat(rows[0][1]), str(rows[0][2]))

"""The relay's anchor side on SQLite: leases instead of row locks, because a SQLite write transaction locks
the whole database and must never stay open while the index works.

A claim leases due rows (`claimed_by`, `claimed_until`) in one short `BEGIN IMMEDIATE`; rows of an entry
another relay holds a live lease on are skipped, so two relays never apply the same entry at once. An
expired lease (a crashed relay) is claimable again. While a batch is in flight its lease is renewed; every
index write is fenced by a check that the rows are still ours, and every settlement (complete, retry, dead
letter) checks it in the same write transaction, so a relay that lost its lease changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from kgents.anchor.sqlite import Database
from kgents.clock import utcnow
from kgents.synapse.buckets_sqlite import SqliteBucketLedger
from kgents.synapse.claim_sqlite import REQUEUE, SqliteClaim, requeue_rows, ts
from kgents.synapse.records import (
    ENTRY_STATE_COLUMNS,
    ClaimedEvent,
    DeadLetter,
    EntryState,
    Heartbeat,
    IndexIdentity,
    IndexState,
    Target,
    Totals,
)

_CLAIM = (
    "UPDATE garden_outbox SET claimed_by = ?1, claimed_until = ?2 WHERE seq IN ("
    " SELECT o.seq FROM garden_outbox o"
    " WHERE o.next_attempt_at <= ?3 AND (o.claimed_until IS NULL OR o.claimed_until < ?3)"
    " AND NOT EXISTS (SELECT 1 FROM garden_outbox b WHERE b.entry_id = o.entry_id"
    "   AND b.claimed_until >= ?3 AND b.claimed_by <> ?1)"
    " ORDER BY o.next_attempt_at, o.seq LIMIT ?4)"
    " RETURNING seq, entry_id, persona, operation, entry_version, created_at, attempts"
)
_CLAIM_ENTRIES = (
    "UPDATE garden_outbox SET claimed_by = ?1, claimed_until = ?2 WHERE seq IN ("
    " SELECT o.seq FROM garden_outbox o WHERE o.entry_id IN (SELECT value FROM json_each(?4))"
    " AND (o.claimed_until IS NULL OR o.claimed_until < ?3 OR o.claimed_by = ?1)"
    " AND NOT EXISTS (SELECT 1 FROM garden_outbox b WHERE b.entry_id = o.entry_id"
    "   AND b.claimed_until >= ?3 AND b.claimed_by <> ?1))"
    " RETURNING seq, entry_id, persona, operation, entry_version, created_at, attempts"
)
"""The rows of some entries, due or not (a writer applying its own change inline), under the same lease rules."""
_ANY_DUE = (
    "SELECT 1 FROM garden_outbox WHERE next_attempt_at <= ?1 AND (claimed_until IS NULL OR claimed_until < ?1) LIMIT 1"
)
"""A read-only look first, so an idle relay polling every few milliseconds never takes the write lock."""
_SELECT_STATE = (
    "SELECT active_collection, active_embedder, active_dimension, pending_collection, pending_embedder,"
    " pending_dimension, generation, index_id, index_location FROM synapse_state WHERE id = 1"
)


def _claimed(r: Sequence[Any]) -> ClaimedEvent:
    return ClaimedEvent(r[0], uuid.UUID(r[1]), r[2], r[3], int(r[4]), datetime.fromisoformat(r[5]), r[6])


def _lease_end(events: Sequence[ClaimedEvent], lease_s: float) -> datetime | None:
    """The earliest a lease taken as these rows were written can end: their oldest `created_at` (stamped by the
    database before the lease was) plus the lease."""
    return min(e.created_at for e in events) + timedelta(seconds=lease_s) if events else None


def _state_of(r: Sequence[Any]) -> EntryState:
    observed = datetime.fromisoformat(r[8]).timestamp()
    tags = tuple(json.loads(r[6]))
    return EntryState(uuid.UUID(r[0]), r[1], r[2], r[3], r[4], float(r[5]), tags, int(r[7]), observed)


def _state(row: Sequence[Any] | None) -> IndexState | None:
    if row is None:
        return None
    pending = None if row[3] is None else Target(row[3], row[4], int(row[5]))
    identity = None if row[7] is None else IndexIdentity(row[7], row[8] or "")
    return IndexState(Target(row[0], row[1], int(row[2])), pending, int(row[6]), identity)


class SqliteRelayQueue:
    backend = "sqlite"

    def __init__(self, db: Database) -> None:
        self.db = db

    @property
    def anchor(self) -> Database:
        return self.db

    def claim(self, relay_id: str, limit: int, lease_s: float) -> AbstractAsyncContextManager[SqliteClaim]:
        now = utcnow()

        def work() -> list[ClaimedEvent]:
            if self.db.conn.execute(_ANY_DUE, (ts(now),)).fetchone() is None:
                return []
            with self.db.write(durable=False) as conn:  # a claim lost in a machine crash is simply not held
                rows = conn.execute(_CLAIM, (relay_id, ts(now + timedelta(seconds=lease_s)), ts(now), limit))
                return [_claimed(r) for r in rows.fetchall()]

        return self._claimed(relay_id, lease_s, work)

    def claim_entries(
        self, relay_id: str, ids: Sequence[uuid.UUID], lease_s: float, leased: Sequence[ClaimedEvent] = ()
    ) -> AbstractAsyncContextManager[SqliteClaim]:
        now = utcnow()
        keys = json.dumps([str(i) for i in ids])
        if leased and {e.entry_id for e in leased} >= set(ids):  # leased to us as they were written
            return self._claimed(relay_id, lease_s, list(leased))

        def work() -> list[ClaimedEvent]:
            with self.db.write(durable=False) as conn:
                rows = conn.execute(_CLAIM_ENTRIES, (relay_id, ts(now + timedelta(seconds=lease_s)), ts(now), keys))
                return [_claimed(r) for r in rows.fetchall()]

        return self._claimed(relay_id, lease_s, work)

    @asynccontextmanager
    async def _claimed(
        self, relay_id: str, lease_s: float, take: Callable[[], list[ClaimedEvent]] | list[ClaimedEvent]
    ) -> AsyncIterator[SqliteClaim]:
        if isinstance(take, list):  # leased as written: at the earliest, the lease ends `lease_s` after the insert
            events, until = sorted(take, key=lambda e: e.seq), _lease_end(take, lease_s)
        else:
            events, until = sorted(await self.db.run(take), key=lambda e: e.seq), None
        claim = SqliteClaim(self.db, self.current, relay_id, events, lease_s, until)
        renewing: asyncio.TimerHandle | None = None
        if claim.events and until is not None:  # a writer's own rows: renewed only if still in flight by then
            renewing = asyncio.get_running_loop().call_later(lease_s / 3, claim.start_renewing)
        elif claim.events:
            claim.renewer = asyncio.create_task(claim.keep_alive())
        try:
            yield claim
        finally:
            if renewing is not None:
                renewing.cancel()
            if claim.renewer is not None:
                claim.renewer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await claim.renewer
            if claim.unsettled():
                await asyncio.shield(claim.release_rest())

    async def requeue(self, events: Sequence[ClaimedEvent]) -> None:
        rows = requeue_rows(events)

        def work() -> None:
            with self.db.write() as conn:
                conn.executemany(REQUEUE, rows)

        await self.db.run(work)

    @asynccontextmanager
    async def listen(self, wake: asyncio.Event) -> AsyncIterator[bool]:
        """SQLite has no notifications across processes: the relay polls (in-process writers call `wake()`)."""
        yield False

    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return await self.db.run(lambda: self.db.conn.execute(sql, params).fetchall())

    async def current(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, EntryState]:
        found: dict[uuid.UUID, EntryState] = {}
        keys = [str(i) for i in dict.fromkeys(ids)]
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            sql = f"SELECT {ENTRY_STATE_COLUMNS} FROM persona_garden WHERE id IN (SELECT value FROM json_each(?))"  # noqa: S608
            for row in await self._fetchall(sql, (json.dumps(chunk),)):
                entry = _state_of(row)
                found[entry.id] = entry
        return found

    async def pending_of(self, ids: Sequence[uuid.UUID]) -> int:
        sql = "SELECT count(*) FROM garden_outbox WHERE entry_id IN (SELECT value FROM json_each(?))"
        return int((await self._fetchall(sql, (json.dumps([str(i) for i in ids]),)))[0][0])

    async def queue_depth(self, cap: int) -> int:
        rows = await self._fetchall("SELECT count(*) FROM (SELECT 1 FROM garden_outbox LIMIT ?)", (cap,))
        return int(rows[0][0])

    async def oldest_pending(self) -> datetime | None:
        rows = await self._fetchall("SELECT min(created_at) FROM garden_outbox")
        return None if rows[0][0] is None else datetime.fromisoformat(rows[0][0])

    async def versions(self) -> dict[uuid.UUID, tuple[str, int]]:
        rows = await self._fetchall("SELECT id, persona, version FROM persona_garden")
        return {uuid.UUID(r[0]): (r[1], int(r[2])) for r in rows}

    async def scan(self, after: uuid.UUID | None, limit: int) -> list[EntryState]:
        sql = f"SELECT {ENTRY_STATE_COLUMNS} FROM persona_garden WHERE id > ? ORDER BY id LIMIT ?"  # noqa: S608
        return [_state_of(r) for r in await self._fetchall(sql, ("" if after is None else str(after), limit))]

    def buckets(self) -> SqliteBucketLedger:
        return SqliteBucketLedger(self.db)

    async def beat(self, heartbeat: Heartbeat) -> None:
        params = (
            heartbeat.relay_id,
            heartbeat.pid,
            heartbeat.host,
            ts(heartbeat.started_at),
            ts(heartbeat.last_beat),
            heartbeat.interval_s,
            json.dumps(heartbeat.stats, default=str),
        )

        def work() -> None:
            with self.db.write() as conn:
                conn.execute(
                    "INSERT INTO synapse_heartbeat"
                    " (relay_id, pid, host, started_at, last_beat, interval_s, stats)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (relay_id)"
                    " DO UPDATE SET last_beat = excluded.last_beat,"
                    " interval_s = excluded.interval_s, stats = excluded.stats",
                    params,
                )

        await self.db.run(work)

    async def heartbeats(self) -> list[Heartbeat]:
        rows = await self._fetchall(
            "SELECT relay_id, pid, host, started_at, last_beat, interval_s, stats FROM synapse_heartbeat"
            " ORDER BY last_beat DESC"
        )
        return [
            Heartbeat(
                r[0],
                r[1],
                r[2],
                datetime.fromisoformat(r[3]),
                datetime.fromisoformat(r[4]),
                r[5],
                json.loads(r[6]),
            )
            for r in rows
        ]

    async def forget(self, relay_id: str) -> None:
        def work() -> None:
            with self.db.write() as conn:
                conn.execute("DELETE FROM synapse_heartbeat WHERE relay_id = ?", (relay_id,))

        await self.db.run(work)

    async def purge_heartbeats(self, before: datetime) -> int:
        def work() -> int:
            with self.db.write() as conn:
                return int(conn.execute("DELETE FROM synapse_heartbeat WHERE last_beat < ?", (ts(before),)).rowcount)

        return await self.db.run(work)

    async def add_totals(self, processed: int, retried: int, dead: int, p50: float | None, p95: float | None) -> None:
        params = (processed, retried, dead, p50, p95, ts(utcnow()))

        def work() -> None:
            with self.db.write() as conn:
                conn.execute(
                    "UPDATE synapse_totals SET processed = processed + ?1, retried = retried + ?2,"
                    " dead = dead + ?3, latency_p50_ms = coalesce(?4, latency_p50_ms),"
                    " latency_p95_ms = coalesce(?5, latency_p95_ms), updated_at = ?6 WHERE id = 1",
                    params,
                )

        await self.db.run(work)

    async def totals(self) -> Totals:
        rows = await self._fetchall(
            "SELECT processed, retried, dead, latency_p50_ms, latency_p95_ms, updated_at FROM synapse_totals"
        )
        if not rows:
            return Totals()
        r = rows[0]
        return Totals(r[0], r[1], r[2], r[3], r[4], None if r[5] is None else datetime.fromisoformat(r[5]))

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        rows = await self._fetchall(
            "SELECT id, outbox_seq, entry_id, persona, operation, entry_version, step, error, attempts,"
            " failed_at"
            " FROM synapse_dead_letter ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [
            DeadLetter(r[0], r[1], uuid.UUID(r[2]), r[3], r[4], r[5], r[6], r[7], r[8], datetime.fromisoformat(r[9]))
            for r in rows
        ]

    async def dead_letter_count(self) -> int:
        return int((await self._fetchall("SELECT count(*) FROM synapse_dead_letter"))[0][0])

    async def read_state(self) -> IndexState | None:
        rows = await self._fetchall(_SELECT_STATE)
        return _state(rows[0] if rows else None)

    async def init_state(self, active: Target, identity: IndexIdentity) -> IndexState:
        def work() -> IndexState | None:
            with self.db.write() as conn:
                conn.execute(
                    "INSERT INTO synapse_state (id, active_collection, active_embedder, active_dimension,"
                    " index_id, index_location) VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                    (active.collection, active.embedder, active.dimension, identity.id, identity.location),
                )
                return _state(conn.execute(_SELECT_STATE).fetchone())

        state = await self.db.run(work)
        assert state is not None
        return state

    async def claim_index(self, identity: IndexIdentity) -> IndexState | None:
        return await self._update_state(
            "UPDATE synapse_state SET index_id = ?, index_location = ?, updated_at = ?"
            " WHERE id = 1 AND index_id IS NULL",
            (identity.id, identity.location, ts(utcnow())),
        )

    async def adopt_index(self, generation: int, active: Target, identity: IndexIdentity) -> IndexState | None:
        return await self._update_state(
            "UPDATE synapse_state SET active_collection = ?, active_embedder = ?, active_dimension = ?,"
            " pending_collection = NULL, pending_embedder = NULL, pending_dimension = NULL, index_id = ?,"
            " index_location = ?, generation = generation + 1, updated_at = ? WHERE id = 1 AND generation = ?",
            (
                active.collection,
                active.embedder,
                active.dimension,
                identity.id,
                identity.location,
                ts(utcnow()),
                generation,
            ),
        )

    async def set_pending(self, generation: int, pending: Target | None) -> IndexState | None:
        values = (None, None, None) if pending is None else (pending.collection, pending.embedder, pending.dimension)
        return await self._update_state(
            "UPDATE synapse_state SET pending_collection = ?, pending_embedder = ?, pending_dimension = ?,"
            " generation = generation + 1, updated_at = ? WHERE id = 1 AND generation = ?",
            (*values, ts(utcnow()), generation),
        )

    async def switch(self, generation: int) -> IndexState | None:
        return await self._update_state(
            "UPDATE synapse_state SET active_collection = pending_collection,"
            " active_embedder = pending_embedder,"
            " active_dimension = pending_dimension, pending_collection = NULL, pending_embedder = NULL,"
            " pending_dimension = NULL, generation = generation + 1, updated_at = ?"
            " WHERE id = 1 AND generation = ? AND pending_collection IS NOT NULL",
            (ts(utcnow()), generation),
        )

    async def _update_state(self, sql: str, params: Sequence[Any]) -> IndexState | None:
        def work() -> IndexState | None:
            with self.db.write() as conn:
                if conn.execute(sql, params).rowcount != 1:
                    return None
                return _state(conn.execute(_SELECT_STATE).fetchone())

        return await self.db.run(work)

"""The relay's anchor side on PostgreSQL: `FOR UPDATE SKIP LOCKED` plus a per-entry advisory lock, in a
transaction held open until the index acknowledged (the pgai Vectorizer's pattern).

Row locks keep two relays off the same outbox rows; the transaction-scoped advisory lock on the entry keeps
them off the same *entry* even when each holds a different row of it. Rows of a locked entry are left for
later. The claimed rows are deleted in the same transaction, so a relay that dies mid-batch loses its claim,
not the events; a relay whose claim connection died learns it at its next fence (a round trip on that
connection) or settlement, and writes nothing more.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from datetime import datetime
from typing import Any, TypeVar

from kgents.anchor.handle import PostgresAnchor
from kgents.synapse.buckets_postgres import PostgresBucketLedger
from kgents.synapse.claim_postgres import PostgresClaim, current_rows, state_of
from kgents.synapse.queue import NOTIFY_CHANNEL, lock_key
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

log = logging.getLogger("kgents.synapse")

T = TypeVar("T")

LISTEN_CONNECT_S = 5.0
LISTEN_RETRY_S = 1.0


async def _first_of(*waits: Any) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


_CLAIM = (
    "SELECT seq, entry_id, persona, operation, entry_version, created_at, attempts FROM garden_outbox"
    " WHERE next_attempt_at <= clock_timestamp() ORDER BY next_attempt_at, seq"
    " LIMIT $1 FOR UPDATE SKIP LOCKED"
)
_CLAIM_ENTRIES = (
    "SELECT seq, entry_id, persona, operation, entry_version, created_at, attempts FROM garden_outbox"
    " WHERE entry_id = ANY($1::uuid[]) ORDER BY seq FOR UPDATE SKIP LOCKED"
)
"""The rows of some entries, due or not (a writer applying its own change inline)."""
_LOCK_ENTRIES = "SELECT k FROM unnest($1::bigint[]) AS k WHERE pg_try_advisory_xact_lock(k)"
_STATE = (
    "SELECT active_collection, active_embedder, active_dimension, pending_collection, pending_embedder,"
    " pending_dimension, generation, index_id, index_location FROM synapse_state WHERE id = 1"
)


def _state(row: Any) -> IndexState | None:
    if row is None:
        return None
    pending = None if row[3] is None else Target(row[3], row[4], int(row[5]))
    identity = None if row[7] is None else IndexIdentity(row[7], row[8] or "")
    return IndexState(Target(row[0], row[1], int(row[2])), pending, int(row[6]), identity)


async def _claim(conn: Any, sql: str, arg: Any) -> PostgresClaim:
    """Lock the rows `sql` selects, keeping only those whose entry no other relay holds."""
    rows = await conn.fetch(sql, arg)
    events = [
        ClaimedEvent(
            r["seq"],
            r["entry_id"],
            r["persona"],
            r["operation"],
            r["entry_version"],
            r["created_at"],
            r["attempts"],
        )
        for r in rows
    ]
    if events:
        keys = {lock_key(e.entry_id) for e in events}
        locked = {r["k"] for r in await conn.fetch(_LOCK_ENTRIES, sorted(keys))}
        events = [e for e in events if lock_key(e.entry_id) in locked]
    return PostgresClaim(conn, events)


class PostgresRelayQueue:
    backend = "postgres"

    def __init__(self, pool: Any, schema: str) -> None:
        self.pool = pool
        self.schema = schema
        self.listening = False
        self.listen_pid: int | None = None

    @property
    def anchor(self) -> PostgresAnchor:
        return PostgresAnchor(self.pool, self.schema)

    def claim(self, relay_id: str, limit: int, lease_s: float) -> AbstractAsyncContextManager[PostgresClaim]:
        return self._claimed(_CLAIM, limit)

    def claim_entries(
        self, relay_id: str, ids: Sequence[uuid.UUID], lease_s: float, leased: Sequence[ClaimedEvent] = ()
    ) -> AbstractAsyncContextManager[PostgresClaim]:
        return self._claimed(_CLAIM_ENTRIES, list(ids))

    @asynccontextmanager
    async def _claimed(self, sql: str, arg: Any) -> AsyncIterator[PostgresClaim]:
        async with self.pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            try:
                claim = await _claim(conn, sql, arg)
                yield claim
            except BaseException:
                with suppress(Exception):  # a dead connection has rolled back already
                    await tx.rollback()
                raise
            await claim.on_claim(tx.commit)

    @asynccontextmanager
    async def listen(self, wake: asyncio.Event) -> AsyncIterator[bool]:
        """LISTEN on the shared channel, waking only for notifications naming our schema. A lost listening
        connection is replaced in the background (and wakes the relay once, to catch up what it missed)."""
        stop = asyncio.Event()
        first = asyncio.Event()
        keeper = asyncio.create_task(self._keep_listening(wake, stop, first))
        with suppress(TimeoutError):
            await asyncio.wait_for(first.wait(), LISTEN_CONNECT_S)
        try:
            yield self.listening
        finally:
            stop.set()
            await keeper

    async def _keep_listening(self, wake: asyncio.Event, stop: asyncio.Event, first: asyncio.Event) -> None:
        def on_notify(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            if payload == self.schema:
                wake.set()

        while not stop.is_set():
            lost = asyncio.Event()
            conn: Any = None
            try:
                conn = await self.pool.acquire()
                conn.add_termination_listener(lambda _c, ev=lost: ev.set())
                await conn.add_listener(NOTIFY_CHANNEL, on_notify)
                self.listening = True
                self.listen_pid = conn.get_server_pid()
                first.set()
                wake.set()  # anything committed while we were not listening
                await _first_of(stop.wait(), lost.wait())
            except Exception as exc:
                log.warning("synapse: LISTEN connection failed: %s", type(exc).__name__)
            finally:
                self.listening = False
                first.set()
                if conn is not None:
                    with suppress(Exception):
                        await conn.remove_listener(NOTIFY_CHANNEL, on_notify)
                    with suppress(Exception):
                        await self.pool.release(conn)
            if not stop.is_set():
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), LISTEN_RETRY_S)

    async def current(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, EntryState]:
        async with self.pool.acquire() as conn:
            return await current_rows(conn, ids)

    async def pending_of(self, ids: Sequence[uuid.UUID]) -> int:
        sql = "SELECT count(*) FROM garden_outbox WHERE entry_id = ANY($1::uuid[])"
        return int(await self.pool.fetchval(sql, list(ids)))

    async def requeue(self, events: Sequence[ClaimedEvent]) -> None:
        newest: dict[uuid.UUID, ClaimedEvent] = {}
        for event in sorted(events, key=lambda e: e.seq):
            newest[event.entry_id] = event
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO garden_outbox (entry_id, persona, operation, entry_version) VALUES ($1, $2, $3, $4)",
                [(e.entry_id, e.persona, e.operation, e.entry_version) for e in newest.values()],
            )
            await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, self.schema)

    async def queue_depth(self, cap: int) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM (SELECT 1 FROM garden_outbox LIMIT $1) q", cap))

    async def oldest_pending(self) -> datetime | None:
        value: datetime | None = await self.pool.fetchval("SELECT min(created_at) FROM garden_outbox")
        return value

    async def versions(self) -> dict[uuid.UUID, tuple[str, int]]:
        rows = await self.pool.fetch("SELECT id, persona, version FROM persona_garden")
        return {r["id"]: (r["persona"], int(r["version"])) for r in rows}

    def buckets(self) -> PostgresBucketLedger:
        return PostgresBucketLedger(self.pool)

    async def scan(self, after: uuid.UUID | None, limit: int) -> list[EntryState]:
        sql = (
            f"SELECT {ENTRY_STATE_COLUMNS} FROM persona_garden"  # noqa: S608
            " WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2"
        )
        return [state_of(r) for r in await self.pool.fetch(sql, after, limit)]

    async def beat(self, heartbeat: Heartbeat) -> None:
        await self.pool.execute(
            "INSERT INTO synapse_heartbeat (relay_id, pid, host, started_at, last_beat, interval_s, stats)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (relay_id)"
            " DO UPDATE SET last_beat = excluded.last_beat,"
            " interval_s = excluded.interval_s, stats = excluded.stats",
            heartbeat.relay_id,
            heartbeat.pid,
            heartbeat.host,
            heartbeat.started_at,
            heartbeat.last_beat,
            heartbeat.interval_s,
            heartbeat.stats,
        )

    async def heartbeats(self) -> list[Heartbeat]:
        rows = await self.pool.fetch(
            "SELECT relay_id, pid, host, started_at, last_beat, interval_s, stats FROM synapse_heartbeat"
            " ORDER BY last_beat DESC"
        )
        return [Heartbeat(r[0], r[1], r[2], r[3], r[4], r[5], dict(r[6])) for r in rows]

    async def forget(self, relay_id: str) -> None:
        await self.pool.execute("DELETE FROM synapse_heartbeat WHERE relay_id = $1", relay_id)

    async def purge_heartbeats(self, before: datetime) -> int:
        done = await self.pool.execute("DELETE FROM synapse_heartbeat WHERE last_beat < $1", before)
        return int(str(done).split()[-1])

    async def add_totals(self, processed: int, retried: int, dead: int, p50: float | None, p95: float | None) -> None:
        await self.pool.execute(
            "UPDATE synapse_totals SET processed = processed + $1, retried = retried + $2, dead = dead + $3,"
            " latency_p50_ms = coalesce($4, latency_p50_ms), latency_p95_ms = coalesce($5, latency_p95_ms),"
            " updated_at = clock_timestamp() WHERE id = 1",
            processed,
            retried,
            dead,
            p50,
            p95,
        )

    async def totals(self) -> Totals:
        row = await self.pool.fetchrow(
            "SELECT processed, retried, dead, latency_p50_ms, latency_p95_ms, updated_at FROM synapse_totals"
        )
        return Totals() if row is None else Totals(*tuple(row))

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        rows = await self.pool.fetch(
            "SELECT id, outbox_seq, entry_id, persona, operation, entry_version, step, error, attempts,"
            " failed_at"
            " FROM synapse_dead_letter ORDER BY id DESC LIMIT $1",
            limit,
        )
        return [DeadLetter(*tuple(r)) for r in rows]

    async def dead_letter_count(self) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM synapse_dead_letter"))

    async def read_state(self) -> IndexState | None:
        return _state(await self.pool.fetchrow(_STATE))

    async def init_state(self, active: Target, identity: IndexIdentity) -> IndexState:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO synapse_state (id, active_collection, active_embedder, active_dimension, index_id,"
                " index_location) VALUES (1, $1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
                active.collection,
                active.embedder,
                active.dimension,
                identity.id,
                identity.location,
            )
            state = _state(await conn.fetchrow(_STATE))
        assert state is not None
        return state

    async def claim_index(self, identity: IndexIdentity) -> IndexState | None:
        return await self._update_state(
            "UPDATE synapse_state SET index_id = $1, index_location = $2, updated_at = clock_timestamp()"
            " WHERE id = 1 AND index_id IS NULL",
            identity.id,
            identity.location,
        )

    async def adopt_index(self, generation: int, active: Target, identity: IndexIdentity) -> IndexState | None:
        return await self._update_state(
            "UPDATE synapse_state SET active_collection = $2, active_embedder = $3, active_dimension = $4,"
            " pending_collection = NULL, pending_embedder = NULL, pending_dimension = NULL, index_id = $5,"
            " index_location = $6, generation = generation + 1, updated_at = clock_timestamp()"
            " WHERE id = 1 AND generation = $1",
            generation,
            active.collection,
            active.embedder,
            active.dimension,
            identity.id,
            identity.location,
        )

    async def set_pending(self, generation: int, pending: Target | None) -> IndexState | None:
        values = (None, None, None) if pending is None else (pending.collection, pending.embedder, pending.dimension)
        return await self._update_state(
            "UPDATE synapse_state SET pending_collection = $2, pending_embedder = $3, pending_dimension = $4,"
            " generation = generation + 1, updated_at = clock_timestamp() WHERE id = 1 AND generation = $1",
            generation,
            *values,
        )

    async def switch(self, generation: int) -> IndexState | None:
        return await self._update_state(
            "UPDATE synapse_state SET active_collection = pending_collection,"
            " active_embedder = pending_embedder,"
            " active_dimension = pending_dimension, pending_collection = NULL, pending_embedder = NULL,"
            " pending_dimension = NULL, generation = generation + 1, updated_at = clock_timestamp()"
            " WHERE id = 1 AND generation = $1 AND pending_collection IS NOT NULL",
            generation,
        )

    async def _update_state(self, sql: str, *params: Any) -> IndexState | None:
        async with self.pool.acquire() as conn, conn.transaction():
            if await conn.execute(sql, *params) != "UPDATE 1":
                return None
            return _state(await conn.fetchrow(_STATE))

"""A relay's claim on SQLite: leased outbox rows, renewed while the batch is in flight, fenced before every index
write and checked again by every settlement.

The lease is ours exactly while `claimed_by` still names us: claiming overwrites it, so a row another relay took
over (after our lease ran out) is no longer ours even if that relay has since released or completed it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from kgents.anchor.sqlite import SqliteAnchor
from kgents.clock import utcnow
from kgents.synapse.queue import ClaimLostError
from kgents.synapse.records import ClaimedEvent, EntryState

log = logging.getLogger("kgents.synapse")


_COMPLETE = "DELETE FROM garden_outbox WHERE claimed_by = ? AND seq IN (SELECT value FROM json_each(?))"
_RELEASE = (
    "UPDATE garden_outbox SET claimed_by = NULL, claimed_until = NULL"
    " WHERE claimed_by = ? AND seq IN (SELECT value FROM json_each(?))"
)
REQUEUE = "INSERT INTO garden_outbox (entry_id, persona, operation, entry_version) VALUES (?, ?, ?, ?)"


def requeue_rows(events: Sequence[ClaimedEvent]) -> list[tuple[str, str, str, int]]:
    """One outbox row per entry, for the newest of its events (due now)."""
    newest: dict[uuid.UUID, ClaimedEvent] = {}
    for event in sorted(events, key=lambda e: e.seq):
        newest[event.entry_id] = event
    return [(str(e.entry_id), e.persona, e.operation, e.entry_version) for e in newest.values()]


def _log_failure(done: asyncio.Future[None]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning("synapse: removing applied outbox rows failed (a relay applies them again): %s", done.exception())


def ts(value: datetime) -> str:
    """A timestamp as the anchor stores it (ISO-8601, microseconds: text order is time order)."""
    return value.isoformat(timespec="microseconds")


class SqliteClaim:
    """Leased rows. A background task renews the lease while the batch is in flight (every third of the lease);
    the lease is ours exactly while `claimed_by` still names us, because claiming overwrites it."""

    def __init__(
        self,
        db: SqliteAnchor,
        current: Callable[[Sequence[uuid.UUID]], Awaitable[dict[uuid.UUID, EntryState]]],
        relay_id: str,
        events: list[ClaimedEvent],
        lease_s: float,
        leased_until: datetime | None = None,
    ) -> None:
        self._db = db
        self._current = current
        self._relay_id = relay_id
        self._lease_s = lease_s
        self.events = events
        self.settled: set[int] = set()
        self.lost = False
        self.renewer: asyncio.Task[None] | None = None
        """Renews the lease while the batch is in flight (a crashed process renews nothing)."""
        self._leased_until = leased_until
        """When the lease runs out, if this process wrote it (a writer leasing its own rows in its insert): until
        then no other relay can take the rows, so the fence reads the clock instead of the database."""

    def _held(self, conn: sqlite3.Connection, seqs: Sequence[int], until: datetime | None = None) -> bool:
        """Are all `seqs` still ours (and, with `until`, leased at least until then)?"""
        sql = "SELECT count(*) FROM garden_outbox WHERE claimed_by = ? AND seq IN (SELECT value FROM json_each(?))"
        params: tuple[Any, ...] = (self._relay_id, json.dumps(list(seqs)))
        if until is not None:
            sql += " AND claimed_until > ?"
            params += (ts(until),)
        return bool(conn.execute(sql, params).fetchone()[0] == len(seqs))

    def unsettled(self) -> list[int]:
        return [e.seq for e in self.events if e.seq not in self.settled]

    async def renew(self) -> bool:
        """Extend the lease of every unsettled row to now + lease, all or nothing; False (and lost) if any row
        is no longer ours."""
        rest = self.unsettled()
        if self.lost or not rest:
            return not self.lost

        def work() -> bool:
            with self._db.write(durable=False) as conn:
                if not self._held(conn, rest):
                    return False
                conn.execute(
                    "UPDATE garden_outbox SET claimed_until = ? WHERE claimed_by = ?"
                    " AND seq IN (SELECT value FROM json_each(?))",
                    (ts(utcnow() + timedelta(seconds=self._lease_s)), self._relay_id, json.dumps(rest)),
                )
                return True

        self._leased_until = None  # from now on the database says how long the lease runs
        if not await self._db.run(work):
            self.lost = True
        return not self.lost

    def start_renewing(self) -> None:
        """Renew now, then as `keep_alive` does (a claim whose batch outlived a third of its lease)."""
        if self.renewer is None and not self.lost:
            self.renewer = asyncio.create_task(self._renew_then_keep_alive())

    async def _renew_then_keep_alive(self) -> None:
        try:
            await self.renew()
        except Exception as exc:
            log.warning("synapse: lease renewal failed: %s", type(exc).__name__)
        await self.keep_alive()

    async def keep_alive(self) -> None:
        """Renew the lease every third of it until cancelled or lost (a failed renewal is retried; the fence
        before each write decides)."""
        while not self.lost:
            await asyncio.sleep(self._lease_s / 3)
            try:
                await self.renew()
            except Exception as exc:
                log.warning("synapse: lease renewal failed: %s", type(exc).__name__)

    async def fence(self) -> None:
        rest = self.unsettled()
        if not self.lost and rest:
            margin = utcnow() + timedelta(seconds=self._lease_s / 2)
            if self._leased_until is not None and margin < self._leased_until:
                return  # our own lease, half of it still ahead: no other relay can have taken it
            if await self._db.run(lambda: self._held(self._db.conn, rest, margin)):
                return
            await self.renew()
        if self.lost:
            raise ClaimLostError(f"relay {self._relay_id} lost its lease on outbox rows {rest[:5]} to another relay")

    async def current(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, EntryState]:
        return await self._current(ids)

    async def complete(self, seqs: Sequence[int], *, wait: bool = True) -> None:
        """Remove the rows (applied). `wait=False`: queue the removal on the connection and return at once;
        every later statement of this process runs after it, and if the claim turns out lost by then, the rows
        still ours are released and the entries requeued (as a relay that lost its claim after writing does).
        Either way the removal does not wait for the disk: lost in a machine crash, the rows are applied again."""
        if not seqs:
            return
        if wait:
            await self._settle(seqs, _COMPLETE, (self._relay_id, json.dumps(list(seqs))), durable=False)
            return
        wanted = set(seqs)
        done = [e for e in self.events if e.seq in wanted]
        self.settled.update(wanted)
        self._db.submit(self._complete_or_requeue, done).add_done_callback(_log_failure)

    def _complete_or_requeue(self, events: Sequence[ClaimedEvent]) -> None:
        seqs = json.dumps([e.seq for e in events])
        with self._db.write(durable=False) as conn:
            if self._held(conn, [e.seq for e in events]):
                conn.execute(_COMPLETE, (self._relay_id, seqs))
                return
            log.warning("synapse: lost the lease on %d applied outbox rows; requeued", len(events))
            conn.execute(_RELEASE, (self._relay_id, seqs))
            conn.executemany(REQUEUE, requeue_rows(events))

    async def retry(self, seqs: Sequence[int], error: str, next_attempt_at: datetime) -> None:
        sql = (
            "UPDATE garden_outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?,"
            " claimed_by = NULL, claimed_until = NULL"
            " WHERE claimed_by = ? AND seq IN (SELECT value FROM json_each(?))"
        )
        await self._settle(seqs, sql, (ts(next_attempt_at), error[:2000], self._relay_id, json.dumps(list(seqs))))

    async def dead_letter(self, events: Sequence[ClaimedEvent], step: str, error: str) -> None:
        last = max(events, key=lambda e: e.seq)
        letter = (
            "INSERT INTO synapse_dead_letter (outbox_seq, entry_id, persona, operation, entry_version, step, error,"
            " attempts, failed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        params = (
            last.seq,
            str(last.entry_id),
            last.persona,
            last.operation,
            last.entry_version,
            step,
            error[:2000],
            max(e.attempts for e in events) + 1,
            ts(utcnow()),
        )
        seqs = [e.seq for e in events]
        await self._settle(seqs, _COMPLETE, (self._relay_id, json.dumps(seqs)), (letter, params))

    async def _settle(
        self,
        seqs: Sequence[int],
        sql: str,
        params: Sequence[Any],
        also: tuple[str, Sequence[Any]] | None = None,
        *,
        durable: bool = True,
    ) -> None:
        """Run `sql` (and `also`) on rows that are all still ours, in one write transaction; else
        ClaimLostError and nothing changed."""
        if not seqs:
            return

        def work() -> bool:
            with self._db.write(durable=durable) as conn:
                if not self._held(conn, seqs):
                    return False
                conn.execute(sql, params)
                if also is not None:
                    conn.execute(*also)
                return True

        if not await self._db.run(work):
            self.lost = True
            raise ClaimLostError(f"relay {self._relay_id} lost its lease on outbox rows {list(seqs)[:5]}")
        self.settled.update(seqs)

    async def release_rest(self) -> None:
        rest = self.unsettled()
        if rest:

            def work() -> None:
                with self._db.write(durable=False) as conn:
                    conn.execute(_RELEASE, (self._relay_id, json.dumps(rest)))

            await self._db.run(work)
            self.settled.update(rest)

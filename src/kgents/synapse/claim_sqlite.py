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

from kgents.anchor.sqlite import Database
from kgents.clock import utcnow
from kgents.synapse.queue import ClaimLostError
from kgents.synapse.records import ClaimedEvent, EntryState

log = logging.getLogger("kgents.synapse")


def ts(value: datetime) -> str:
    """A timestamp as the anchor stores it (ISO-8601, microseconds: text order is time order)."""
    return value.isoformat(timespec="microseconds")


class SqliteClaim:
    """Leased rows. A background task renews the lease while the batch is in flight (every third of the lease);
    the lease is ours exactly while `claimed_by` still names us, because claiming overwrites it."""

    def __init__(
        self,
        db: Database,
        current: Callable[[Sequence[uuid.UUID]], Awaitable[dict[uuid.UUID, EntryState]]],
        relay_id: str,
        events: list[ClaimedEvent],
        lease_s: float,
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

    def _held(self, conn: sqlite3.Connection, seqs: Sequence[int], until: datetime | None = None) -> bool:
        """Are all `seqs` still ours (and, with `until`, leased at least until then)?"""
        sql = "SELECT count(*) FROM garden_outbox WHERE claimed_by = ? AND seq IN (SELECT value FROM json_each(?))"
        params: tuple[Any, ...] = (self._relay_id, json.dumps(list(seqs)))
        if until is not None:
            sql += " AND claimed_until > ?"
            params += (ts(until),)
        return bool(conn.execute(sql, params).fetchone()[0] == len(seqs))

    def _unsettled(self) -> list[int]:
        return [e.seq for e in self.events if e.seq not in self.settled]

    async def renew(self) -> bool:
        """Extend the lease of every unsettled row to now + lease, all or nothing; False (and lost) if any row
        is no longer ours."""
        rest = self._unsettled()
        if self.lost or not rest:
            return not self.lost

        def work() -> bool:
            with self._db.write() as conn:
                if not self._held(conn, rest):
                    return False
                conn.execute(
                    "UPDATE garden_outbox SET claimed_until = ? WHERE claimed_by = ?"
                    " AND seq IN (SELECT value FROM json_each(?))",
                    (ts(utcnow() + timedelta(seconds=self._lease_s)), self._relay_id, json.dumps(rest)),
                )
                return True

        if not await self._db.run(work):
            self.lost = True
        return not self.lost

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
        rest = self._unsettled()
        if not self.lost and rest:
            margin = utcnow() + timedelta(seconds=self._lease_s / 2)
            if await self._db.run(lambda: self._held(self._db.conn, rest, margin)):
                return
            await self.renew()
        if self.lost:
            raise ClaimLostError(f"relay {self._relay_id} lost its lease on outbox rows {rest[:5]} to another relay")

    async def current(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, EntryState]:
        return await self._current(ids)

    async def complete(self, seqs: Sequence[int]) -> None:
        await self._settle(
            seqs,
            "DELETE FROM garden_outbox WHERE claimed_by = ? AND seq IN (SELECT value FROM json_each(?))",
            (self._relay_id, json.dumps(list(seqs))),
        )

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
        await self._settle(
            seqs,
            "DELETE FROM garden_outbox WHERE claimed_by = ? AND seq IN (SELECT value FROM json_each(?))",
            (self._relay_id, json.dumps(seqs)),
            (letter, params),
        )

    async def _settle(
        self, seqs: Sequence[int], sql: str, params: Sequence[Any], also: tuple[str, Sequence[Any]] | None = None
    ) -> None:
        """Run `sql` (and `also`) on rows that are all still ours, in one write transaction; else
        ClaimLostError and nothing changed."""
        if not seqs:
            return

        def work() -> bool:
            with self._db.write() as conn:
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
        rest = self._unsettled()
        if rest:

            def work() -> None:
                with self._db.write() as conn:
                    conn.execute(
                        "UPDATE garden_outbox SET claimed_by = NULL, claimed_until = NULL"
                        " WHERE claimed_by = ? AND seq IN (SELECT value FROM json_each(?))",
                        (self._relay_id, json.dumps(rest)),
                    )

            await self._db.run(work)
            self.settled.update(rest)

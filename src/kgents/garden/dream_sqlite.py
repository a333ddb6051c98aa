"""`DreamLedger` on the SQLite anchor (timestamps are ISO-8601 text in UTC, so a day is the text's first 10 characters
and text order is time order)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from kgents.anchor.sqlite import Database
from kgents.garden.dream_ledger import NEVER, Decayed, DecayRule, DreamState, Pending, decay_statements
from kgents.garden.model import Lifecycle
from kgents.garden.sqlite_store import _ts

if TYPE_CHECKING:
    from kgents.garden.store import GardenStore

# ?1 persona, ?2 today, ?3 stale days, ?4 decayed through, ?5 loss a day, ?6 floor, ?7 the stale cut (a day)
_DAYS = "CAST(julianday(?2) - max(julianday(substr(last_nurtured, 1, 10)) + ?3, julianday(?4)) AS INTEGER)"
_LEVEL = f"round(max(0.0, confidence - ?5 * {_DAYS}), 6)"
_DECAY, _WOULD_DECAY = decay_statements("?1", _LEVEL, "?6", "?7", lambda a, b: f"min({a}, {b})")
_THROUGH = "SELECT decayed_through FROM dream_state WHERE persona = ?"
_DECAYED_THROUGH = (
    "INSERT INTO dream_state (persona, decayed_through) VALUES (?, ?)"
    " ON CONFLICT (persona) DO UPDATE SET decayed_through = excluded.decayed_through"
)
_CLAIM = (
    "INSERT INTO dream_state (persona, lease_owner, lease_until) VALUES (?1, ?2, ?3)"
    " ON CONFLICT (persona) DO UPDATE SET lease_owner = ?2, lease_until = ?3"
    " WHERE dream_state.lease_until IS NULL OR dream_state.lease_until < ?4 OR dream_state.lease_owner = ?2"
)
_FINISH = (
    "UPDATE dream_state SET lease_owner = NULL, lease_until = NULL, dreams = dreams + ?3,"
    " dreamt_at = coalesce(?4, dreamt_at) WHERE persona = ?1 AND lease_owner = ?2"
)


class SqliteDreamLedger:
    def __init__(self, db: Database, store: GardenStore) -> None:
        self._db = db
        self._store = store

    async def pending(self, persona: str, limit: int) -> list[Pending]:
        sql = "SELECT entry_id, entry_version FROM dream_pending WHERE persona = ? ORDER BY entry_id LIMIT ?"
        rows = await self._db.run(lambda: self._db.conn.execute(sql, (persona, limit)).fetchall())
        versions = {uuid.UUID(r[0]): int(r[1]) for r in rows}
        entries = await self._store.get_many(persona, list(versions))
        return [Pending(entries[i], v) for i, v in versions.items() if i in entries]

    async def pending_count(self, persona: str) -> int:
        sql = "SELECT count(*) FROM dream_pending WHERE persona = ?"
        return int(await self._db.run(lambda: self._db.conn.execute(sql, (persona,)).fetchone()[0]))

    async def settle(self, persona: str, seen: Sequence[tuple[uuid.UUID, int]]) -> int:
        if not seen:
            return 0
        sql = "DELETE FROM dream_pending WHERE persona = ? AND entry_id = ? AND entry_version = ?"
        rows = [(persona, str(i), v) for i, v in seen]

        def work() -> int:
            with self._db.write() as conn:
                return int(conn.executemany(sql, rows).rowcount)

        return await self._db.run(work)

    async def state(self, persona: str) -> DreamState:
        sql = "SELECT dreams, dreamt_at, decayed_through FROM dream_state WHERE persona = ?"
        row = await self._db.run(lambda: self._db.conn.execute(sql, (persona,)).fetchone())
        if row is None:
            return DreamState(persona)
        dreamt = None if row[1] is None else datetime.fromisoformat(row[1])
        through = None if row[2] is None else date.fromisoformat(row[2])
        return DreamState(persona, int(row[0]), dreamt, through)

    async def decay(self, persona: str, today: date, rule: DecayRule, *, dry_run: bool = False) -> Decayed:
        def params(through: date) -> tuple[object, ...]:
            fixed = (persona, today.isoformat(), rule.stale_days, through.isoformat(), rule.per_day, rule.floor)
            return (*fixed, rule.cut(today).isoformat())

        if dry_run:
            through = (await self.state(persona)).decayed_through or NEVER
            if through >= today:
                return Decayed()
            rows = await self._db.run(lambda: self._db.conn.execute(_WOULD_DECAY, params(through)).fetchall())
            ids = tuple(uuid.UUID(r[0]) for r in rows)
            return Decayed(len(ids), tuple(i for i, r in zip(ids, rows, strict=True) if r[1]), ids)

        def work() -> list[tuple[str, str]]:
            with self._db.write() as conn:  # the day reached is read in the write transaction: two decays queue
                found = conn.execute(_THROUGH, (persona,)).fetchone()
                through = date.fromisoformat(found[0]) if found and found[0] else NEVER
                if through >= today:
                    return []
                lowered: list[tuple[str, str]] = conn.execute(_DECAY, params(through)).fetchall()
                conn.execute(_DECAYED_THROUGH, (persona, today.isoformat()))
                return lowered

        rows = await self._db.run(work)
        composted = tuple(uuid.UUID(r[0]) for r in rows if r[1] == Lifecycle.COMPOST.value)
        return Decayed(len(rows), composted, tuple(uuid.UUID(r[0]) for r in rows))

    async def claim(self, persona: str, owner: str, seconds: float) -> bool:
        now = datetime.now(UTC)
        params = (persona, owner, _ts(now + timedelta(seconds=seconds)), _ts(now))

        def work() -> bool:
            with self._db.write() as conn:
                return bool(conn.execute(_CLAIM, params).rowcount == 1)

        return await self._db.run(work)

    async def finish(self, persona: str, owner: str, dreamt_at: datetime | None) -> None:
        params = (persona, owner, 0 if dreamt_at is None else 1, None if dreamt_at is None else _ts(dreamt_at))

        def work() -> None:
            with self._db.write() as conn:
                conn.execute(_FINISH, params)

        await self._db.run(work)

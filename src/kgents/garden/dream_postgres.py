"""`DreamLedger` on PostgreSQL (a day is the UTC date of a timestamp)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from kgents.anchor import postgres as pg
from kgents.garden.dream_ledger import NEVER, Decayed, DecayRule, DreamState, Pending, decay_statements, midnight
from kgents.garden.model import Lifecycle

if TYPE_CHECKING:
    from kgents.garden.store import GardenStore

# $1 persona, $2 today, $3 stale days, $4 decayed through, $5 loss a day, $6 floor, $7 the stale cut (midnight UTC)
_DAYS = "($2::date - greatest((last_nurtured AT TIME ZONE 'UTC')::date + $3::int, $4::date))"
_LEVEL = f"round(greatest(0, confidence - $5::float8 * {_DAYS})::numeric, 6)::float8"
_DECAY, _WOULD_DECAY = decay_statements("$1", _LEVEL, "$6::float8", "$7", lambda a, b: f"least({a}, {b})")
_THROUGH = "SELECT decayed_through FROM dream_state WHERE persona = $1 FOR UPDATE"
_DECAYED_THROUGH = (
    "INSERT INTO dream_state (persona, decayed_through) VALUES ($1, $2)"
    " ON CONFLICT (persona) DO UPDATE SET decayed_through = excluded.decayed_through"
)
_CLAIM = (
    "INSERT INTO dream_state (persona, lease_owner, lease_until) VALUES ($1, $2, $3)"
    " ON CONFLICT (persona) DO UPDATE SET lease_owner = $2, lease_until = $3"
    " WHERE dream_state.lease_until IS NULL OR dream_state.lease_until < $4 OR dream_state.lease_owner = $2"
    " RETURNING persona"
)
_FINISH = (
    "UPDATE dream_state SET lease_owner = NULL, lease_until = NULL, dreams = dreams + $3,"
    " dreamt_at = coalesce($4, dreamt_at) WHERE persona = $1 AND lease_owner = $2"
)
_SETTLE = (
    "DELETE FROM dream_pending AS p USING unnest($2::uuid[], $3::bigint[]) AS s (id, version)"
    " WHERE p.persona = $1 AND p.entry_id = s.id AND p.entry_version = s.version"
)


class PostgresDreamLedger:
    def __init__(self, pool: Any, store: GardenStore) -> None:
        self._pool = pool
        self._store = store

    @pg.translate_errors
    async def pending(self, persona: str, limit: int) -> list[Pending]:
        rows = await self._pool.fetch(
            "SELECT entry_id, entry_version FROM dream_pending WHERE persona = $1 ORDER BY entry_id LIMIT $2",
            persona,
            limit,
        )
        versions: dict[uuid.UUID, int] = {r["entry_id"]: int(r["entry_version"]) for r in rows}
        entries = await self._store.get_many(persona, list(versions))
        return [Pending(entries[i], v) for i, v in versions.items() if i in entries]

    @pg.translate_errors
    async def pending_count(self, persona: str) -> int:
        return int(await self._pool.fetchval("SELECT count(*) FROM dream_pending WHERE persona = $1", persona))

    @pg.translate_write_errors
    async def settle(self, persona: str, seen: Sequence[tuple[uuid.UUID, int]]) -> int:
        if not seen:
            return 0
        status = await self._pool.execute(_SETTLE, persona, [i for i, _ in seen], [v for _, v in seen])
        return int(status.split()[-1])

    @pg.translate_errors
    async def state(self, persona: str) -> DreamState:
        row = await self._pool.fetchrow(
            "SELECT dreams, dreamt_at, decayed_through FROM dream_state WHERE persona = $1", persona
        )
        if row is None:
            return DreamState(persona)
        return DreamState(persona, int(row["dreams"]), row["dreamt_at"], row["decayed_through"])

    @pg.translate_write_errors
    async def decay(self, persona: str, today: date, rule: DecayRule, *, dry_run: bool = False) -> Decayed:
        def params(through: date) -> tuple[object, ...]:
            return (persona, today, rule.stale_days, through, rule.per_day, rule.floor, midnight(rule.cut(today)))

        if dry_run:
            through = (await self.state(persona)).decayed_through or NEVER
            if through >= today:
                return Decayed()
            rows = await self._pool.fetch(_WOULD_DECAY, *params(through))
            return Decayed(len(rows), tuple(r["id"] for r in rows if r["composts"]), tuple(r["id"] for r in rows))
        async with self._pool.acquire() as conn, conn.transaction():
            # the persona's row locked first: two decays of one persona queue, and the second finds the day reached
            await conn.execute("INSERT INTO dream_state (persona) VALUES ($1) ON CONFLICT DO NOTHING", persona)
            through = await conn.fetchval(_THROUGH, persona) or NEVER
            if through >= today:
                return Decayed()
            rows = await conn.fetch(_DECAY, *params(through))
            await conn.execute(_DECAYED_THROUGH, persona, today)
        composted = tuple(r["id"] for r in rows if r["lifecycle"] == Lifecycle.COMPOST.value)
        return Decayed(len(rows), composted, tuple(r["id"] for r in rows))

    @pg.translate_errors
    async def claim(self, persona: str, holder: str, seconds: float) -> bool:
        now = datetime.now(UTC)
        return await self._pool.fetchval(_CLAIM, persona, holder, now + timedelta(seconds=seconds), now) is not None

    @pg.translate_write_errors
    async def finish(self, persona: str, holder: str, dreamt_at: datetime | None) -> None:
        await self._pool.execute(_FINISH, persona, holder, 0 if dreamt_at is None else 1, dreamt_at)

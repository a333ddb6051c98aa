"""A relay's claim on PostgreSQL: outbox rows locked by an open transaction (and their entries by advisory locks),
held exactly while that transaction's connection lives; the fence is a round trip on it."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import asyncpg

from kgents.synapse.queue import ClaimLostError
from kgents.synapse.records import ENTRY_STATE_COLUMNS, ClaimedEvent, EntryState

T = TypeVar("T")

_CLAIM_LOST: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InFailedSQLTransactionError,
    asyncpg.AdminShutdownError,
    ConnectionError,
    OSError,
)
"""What a dead claim connection raises: its transaction is gone, and with it the claim."""

_CURRENT = f"SELECT {ENTRY_STATE_COLUMNS} FROM persona_garden WHERE id = ANY($1::uuid[])"  # noqa: S608


def state_of(r: Any) -> EntryState:
    return EntryState(
        r["id"],
        r["persona"],
        r["content"],
        r["entry_type"],
        r["lifecycle"],
        r["confidence"],
        tuple(r["tags"]),
        r["version"],
        r[8].timestamp(),
    )


async def current_rows(conn: Any, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, EntryState]:
    rows = await conn.fetch(_CURRENT, list(dict.fromkeys(ids)))
    return {r["id"]: state_of(r) for r in rows}


class PostgresClaim:
    """Rows locked by an open transaction: the claim is held exactly while that transaction's connection lives
    (a dead connection rolls back and unlocks them), so the fence is a round trip on it."""

    def __init__(self, conn: Any, events: list[ClaimedEvent]) -> None:
        self._conn = conn
        self.events = events

    async def on_claim(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run `call` (on the claim's connection), turning a dead connection into ClaimLostError."""
        try:
            return await call()
        except _CLAIM_LOST as exc:
            raise ClaimLostError(f"the claim's connection to PostgreSQL was lost: {type(exc).__name__}") from None

    async def fence(self) -> None:
        await self.on_claim(lambda: self._conn.fetchval("SELECT 1"))

    async def current(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, EntryState]:
        return await self.on_claim(lambda: current_rows(self._conn, ids))

    async def complete(self, seqs: Sequence[int], *, wait: bool = True) -> None:
        if seqs:  # always waits: the removal is part of the claim's transaction
            await self.on_claim(
                lambda: self._conn.execute("DELETE FROM garden_outbox WHERE seq = ANY($1::bigint[])", list(seqs))
            )

    async def retry(self, seqs: Sequence[int], error: str, next_attempt_at: datetime) -> None:
        if seqs:
            await self.on_claim(
                lambda: self._conn.execute(
                    "UPDATE garden_outbox SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3"
                    " WHERE seq = ANY($1::bigint[])",
                    list(seqs),
                    next_attempt_at,
                    error[:2000],
                )
            )

    async def dead_letter(self, events: Sequence[ClaimedEvent], step: str, error: str) -> None:
        last = max(events, key=lambda e: e.seq)
        await self.on_claim(
            lambda: self._conn.execute(
                "INSERT INTO synapse_dead_letter (outbox_seq, entry_id, persona, operation, entry_version,"
                " step, error,"
                " attempts) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                last.seq,
                last.entry_id,
                last.persona,
                last.operation,
                last.entry_version,
                step,
                error[:2000],
                max(e.attempts for e in events) + 1,
            )
        )
        await self.complete([e.seq for e in events])

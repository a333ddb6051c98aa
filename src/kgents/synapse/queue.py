"""What the relay needs from the database of truth, as one protocol with a SQLite and a PostgreSQL adapter.

The outbox is a queue of keys, never a log to replay from a high-water mark: a relay *claims* due rows
(PostgreSQL: `FOR UPDATE SKIP LOCKED` in a transaction held open until the index acknowledged; SQLite: a
lease that expires), re-reads the current rows, and removes the claimed rows only after the index write
succeeded (at-least-once).

Fencing: a relay may lose its claim mid-batch (a SQLite lease that ran out while the process stalled, a
PostgreSQL connection that died) and another relay may then apply the same entries. So every index write is
preceded by `Claim.fence()`, every settlement checks the claim in the same statement, and a relay that finds
its claim lost abandons the batch (nothing counted); if it had already written, it `requeue`s the entries so
their current rows are applied once more, repairing a write that raced the new owner.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from kgents.anchor.handle import Anchor
from kgents.synapse.buckets import BucketLedger
from kgents.synapse.records import (
    ClaimedEvent,
    DeadLetter,
    EntryState,
    Heartbeat,
    IndexIdentity,
    IndexState,
    Target,
    Totals,
)

NOTIFY_CHANNEL = "kgents_outbox"


class ClaimLostError(Exception):
    """This relay no longer holds its claim: it must not write the index for the batch nor settle any of it."""


class Claim(Protocol):
    """A batch of outbox rows one relay holds; every row ends completed, retried, dead-lettered or
    released."""

    @property
    def events(self) -> Sequence[ClaimedEvent]:
        """The claimed rows, oldest first."""
        ...

    async def current(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, EntryState]:
        """The rows as they are now (any persona); an id absent from the result was deleted."""
        ...

    async def fence(self) -> None:
        """Raise ClaimLostError unless the claim is still held (and, on SQLite, leased long enough for one index
        write, renewing it if it runs low). Call it immediately before every index write."""
        ...

    async def complete(self, seqs: Sequence[int], *, wait: bool = True) -> None:
        """Remove these outbox rows: their entries are applied. ClaimLostError (and nothing removed) if the
        claim was lost; so for retry and dead_letter. `wait=False` (SQLite): queue the removal behind this
        process's connection and return; if the claim is lost by then, the entries are requeued instead
        (PostgreSQL always waits: the removal commits the claim's transaction)."""
        ...

    async def retry(self, seqs: Sequence[int], error: str, next_attempt_at: datetime) -> None:
        """Count a failed attempt on these rows and hide them until `next_attempt_at`."""
        ...

    async def dead_letter(self, events: Sequence[ClaimedEvent], step: str, error: str) -> None:
        """Give up on these rows (one entry): record a dead letter and remove them from the queue."""
        ...


class RelayQueue(Protocol):
    @property
    def backend(self) -> str: ...

    @property
    def anchor(self) -> Anchor:
        """The opened anchor this queue is on."""
        ...

    def claim(self, relay_id: str, limit: int, lease_s: float) -> AbstractAsyncContextManager[Claim]:
        """Claim up to `limit` due rows. On normal exit the outcome commits (ClaimLostError if the claim was lost
        first); on an exception it is undone (PostgreSQL rolls back, SQLite releases the leases still held), so
        the rows are claimable again at once. SQLite renews the lease while the block runs."""
        ...

    def claim_entries(
        self, relay_id: str, ids: Sequence[uuid.UUID], lease_s: float, leased: Sequence[ClaimedEvent] = ()
    ) -> AbstractAsyncContextManager[Claim]:
        """Claim the outbox rows of these entries, due or not, under the same rules as `claim` (rows of an entry
        another relay holds are left to it): a writer applying its own change inline. `leased`: rows the store
        leased to `relay_id` for `lease_s` as it wrote them (SQLite), taken as the claim when they cover every
        entry."""
        ...

    def listen(self, wake: asyncio.Event) -> AbstractAsyncContextManager[bool]:
        """Set `wake` whenever a change is committed (PostgreSQL LISTEN on our schema); yields whether
        notifications work (False: the caller relies on polling)."""
        ...

    async def current(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, EntryState]: ...

    async def requeue(self, events: Sequence[ClaimedEvent]) -> None:
        """Enqueue the newest of `events` once more per entry (due now): a relay that wrote the index and then
        found its claim lost may have raced the new owner, so the entries' current rows are applied again."""
        ...

    async def pending_of(self, ids: Sequence[uuid.UUID]) -> int:
        """Outbox rows of these entries (claimed or not)."""
        ...

    async def queue_depth(self, cap: int) -> int:
        """Pending outbox rows, counted up to `cap` (cheap on a huge backlog)."""
        ...

    async def oldest_pending(self) -> datetime | None: ...

    async def versions(self) -> dict[uuid.UUID, tuple[str, int]]:
        """Every entry's (persona, version): the truth coherency is measured against."""
        ...

    async def scan(self, after: uuid.UUID | None, limit: int) -> list[EntryState]:
        """Entries of every persona in id order, after `after` (for reindex)."""
        ...

    def buckets(self) -> BucketLedger:
        """Bucketed coherency's side of the anchor (`kgents.synapse.buckets`)."""
        ...

    async def beat(self, heartbeat: Heartbeat) -> None: ...

    async def heartbeats(self) -> list[Heartbeat]: ...

    async def forget(self, relay_id: str) -> None: ...

    async def purge_heartbeats(self, before: datetime) -> int:
        """Delete heartbeats last seen before `before` (relays long dead, e.g. killed with -9)."""
        ...

    async def add_totals(self, processed: int, retried: int, dead: int, p50: float | None, p95: float | None) -> None:
        """Add a relay's counts since its last heartbeat to the anchor's totals (and its latest latencies)."""
        ...

    async def totals(self) -> Totals: ...

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]: ...

    async def dead_letter_count(self) -> int: ...

    async def read_state(self) -> IndexState | None: ...

    async def init_state(self, active: Target, identity: IndexIdentity) -> IndexState:
        """Record `active` (in the index `identity`) as the active collection unless a state exists; return the
        state in force."""
        ...

    async def claim_index(self, identity: IndexIdentity) -> IndexState | None:
        """Record the index an anchor from before index identities feeds, unless one is recorded already."""
        ...

    async def adopt_index(self, generation: int, active: Target, identity: IndexIdentity) -> IndexState | None:
        """Make `active`, in the index `identity`, the active collection (no reindex pending), if the state is
        still at `generation`; None if it moved on."""
        ...

    async def set_pending(self, generation: int, pending: Target | None) -> IndexState | None:
        """Start (or abandon) a reindex, if the state is still at `generation`; None if it moved on."""
        ...

    async def switch(self, generation: int) -> IndexState | None:
        """Make the pending collection the active one atomically, if the state is still at `generation`."""
        ...


def lock_key(entry_id: uuid.UUID) -> int:
    """A signed 64-bit advisory-lock key for an entry (PostgreSQL's `pg_try_advisory_xact_lock(bigint)`)."""
    return int.from_bytes(entry_id.bytes[:8], "big", signed=True)


def queue_on(anchor: Anchor) -> RelayQueue:
    """The relay's queue on an opened anchor, sharing its connection or pool."""
    from kgents.anchor.handle import PostgresAnchor

    if isinstance(anchor, PostgresAnchor):
        from kgents.synapse.queue_postgres import PostgresRelayQueue

        return PostgresRelayQueue(anchor.pool, anchor.schema)
    from kgents.synapse.queue_sqlite import SqliteRelayQueue

    return SqliteRelayQueue(anchor)

"""The inline writer's cheaper settlement: a completion queued behind the connection (`complete(wait=False)`), the
fence of rows leased as they were written, and bookkeeping commits that do not wait for the disk."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import pytest

from kgents.anchor.sqlite import Database
from kgents.clock import utcnow
from kgents.config import Settings
from kgents.garden.records import Lease
from kgents.garden.service import PersonaGarden
from kgents.garden.store import GardenStore, open_store
from kgents.synapse.queue import ClaimLostError, RelayQueue, queue_on
from kgents.synapse.records import ClaimedEvent
from tests.helpers import wait_until
from tests.synapse_support import no_other_claim_for, take_claim_away


@pytest.fixture
async def opened(anchor_settings: Settings) -> AsyncIterator[tuple[GardenStore, RelayQueue]]:
    store = await open_store(anchor_settings)
    try:
        yield store, queue_on(store.anchor)
    finally:
        await store.close()


def _sqlite_only(store: GardenStore) -> None:
    if store.backend != "sqlite":
        pytest.skip("SQLite's leases; a PostgreSQL claim is its transaction")


async def _plant_leased(store: GardenStore, owner: str, seconds: float) -> list[ClaimedEvent]:
    garden = PersonaGarden(store, "kent")
    lease = Lease(owner, seconds)
    await garden.plant_many([garden.new_entry("a note leased as it was written", "INSIGHT")], lease)
    return [
        ClaimedEvent(e.seq, e.entry_id, e.persona, e.operation.value, e.entry_version, e.created_at, e.attempts)
        for e in lease.leased
    ]


def _seqs(events: Sequence[ClaimedEvent]) -> list[int]:
    return [e.seq for e in events]


async def test_a_completion_queued_behind_is_seen_by_the_next_statement(
    opened: tuple[GardenStore, RelayQueue],
) -> None:
    store, queue = opened
    await PersonaGarden(store, "kent").plant("entry", "VALUE")
    async with queue.claim("relay-1", 10, 30) as claim:
        assert len(claim.events) == 1
        await claim.complete(_seqs(claim.events), wait=False)
        if store.backend == "sqlite":  # (PostgreSQL: the removal commits with the claim's transaction)
            assert await queue.queue_depth(10) == 0, "no later read of this process sees the row"
    assert await queue.queue_depth(10) == 0


async def test_a_completion_queued_behind_a_lost_claim_requeues_the_entry(
    opened: tuple[GardenStore, RelayQueue],
) -> None:
    store, queue = opened
    _sqlite_only(store)
    entry = await PersonaGarden(store, "kent").plant("entry", "VALUE")
    held = queue.claim("relay-1", 10, 60)
    claim = await held.__aenter__()
    await take_claim_away(queue, "relay-1", entry.id)
    async with queue.claim("relay-2", 10, 60) as taken:
        assert [e.entry_id for e in taken.events] == [entry.id]
        await claim.complete(_seqs(claim.events), wait=False)  # too late: relay-2 holds the row
        await held.__aexit__(None, None, None)
        await taken.complete(_seqs(taken.events))
    pending = await store.outbox_peek("kent")
    assert [(e.entry_id, e.attempts) for e in pending] == [(entry.id, 0)], "relay-1's write is applied once more"


async def test_rows_leased_as_written_are_fenced_by_the_database_once_half_the_lease_is_gone(
    opened: tuple[GardenStore, RelayQueue],
) -> None:
    store, queue = opened
    _sqlite_only(store)
    events = await _plant_leased(store, "face", 0.4)
    ids = [e.entry_id for e in events]
    async with queue.claim_entries("face", ids, 0.4, events) as claim:
        await claim.fence()  # our own fresh lease
        began = time.monotonic()

        async def half_gone() -> bool:
            return time.monotonic() - began > 0.25

        await wait_until(half_gone, timeout=5, what="half the lease gone")
        await take_claim_away(queue, "face", ids[0])
        async with queue.claim("other", 10, 30) as other:
            assert len(other.events) == 1
            with pytest.raises(ClaimLostError):
                await claim.fence()


async def test_rows_leased_as_written_are_renewed_while_in_flight(opened: tuple[GardenStore, RelayQueue]) -> None:
    store, queue = opened
    _sqlite_only(store)
    events = await _plant_leased(store, "face", 1.0)
    async with queue.claim_entries("face", [e.entry_id for e in events], 1.0, events) as claim:
        await no_other_claim_for(queue, 3.0)
        await claim.fence()
        await claim.complete(_seqs(events))
    assert await queue.queue_depth(10) == 0


async def test_a_write_that_need_not_wait_for_the_disk_commits_and_restores_the_setting(tmp_path: object) -> None:
    from pathlib import Path

    db = await Database.open(Path(str(tmp_path)) / "anchor.db")
    try:

        def work() -> tuple[int, int]:
            with db.write(durable=False) as conn:
                conn.execute("INSERT INTO garden_tombstone (id, last_version) VALUES ('x', 1)")
            with pytest.raises(sqlite3.IntegrityError), db.write(durable=False) as conn:
                conn.execute("INSERT INTO garden_tombstone (id, last_version) VALUES ('x', 1)")
            count = db.conn.execute("SELECT count(*) FROM garden_tombstone").fetchone()[0]
            return int(count), int(db.conn.execute("PRAGMA synchronous").fetchone()[0])

        count, synchronous = await db.run(work)
        assert count == 1, "committed once, the failed one rolled back"
        assert synchronous == 2, "FULL again for the writes that must wait for the disk"
    finally:
        await db.close()


async def test_a_lease_written_long_ago_is_not_taken_for_a_fresh_one(opened: tuple[GardenStore, RelayQueue]) -> None:
    """The lease end a claim of rows leased as written assumes is never later than the database's."""
    store, queue = opened
    _sqlite_only(store)
    events = await _plant_leased(store, "face", 30)
    old = [
        ClaimedEvent(e.seq, e.entry_id, e.persona, e.operation, e.entry_version, utcnow() - timedelta(minutes=1), 0)
        for e in events
    ]
    async with queue.claim_entries("face", [e.entry_id for e in old], 30, old) as claim:
        await take_claim_away(queue, "face", old[0].entry_id)
        async with queue.claim("other", 10, 30) as other:
            assert len(other.events) == 1
            with pytest.raises(ClaimLostError):
                await claim.fence()

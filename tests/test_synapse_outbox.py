"""The relay's claim on the outbox, on both anchors: exclusive per row and per entry, released on failure,
reclaimable after a crash, due-ness respected, and rows removed only on completion."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from kgents.clock import utcnow
from kgents.config import Settings
from kgents.garden.service import PersonaGarden
from kgents.garden.store import GardenStore, open_store
from kgents.synapse.queue import ClaimLostError, RelayQueue, queue_on
from tests.helpers import wait_until
from tests.synapse_support import no_other_claim_for, take_claim_away


@pytest.fixture
async def opened(anchor_settings: Settings) -> AsyncIterator[tuple[GardenStore, RelayQueue]]:
    store = await open_store(anchor_settings)
    try:
        yield store, queue_on(store.anchor)
    finally:
        await store.close()


async def test_claims_are_exclusive_per_row_and_per_entry(opened: tuple[GardenStore, RelayQueue]) -> None:
    store, queue = opened
    g = PersonaGarden(store, "kent")
    a = await g.plant("entry a", "VALUE")
    b = await g.plant("entry b", "VALUE")
    async with queue.claim("relay-1", 1, 30) as first:
        assert [e.entry_id for e in first.events] == [a.id]
        await g.nurture(a.id, confidence=0.9)  # a second row for the entry relay-1 holds
        async with queue.claim("relay-2", 10, 30) as second:
            assert [e.entry_id for e in second.events] == [b.id], "never a row or an entry another relay holds"
            await second.complete([e.seq for e in second.events])
        await first.complete([e.seq for e in first.events])
    async with queue.claim("relay-2", 10, 30) as third:
        assert [(e.entry_id, e.entry_version) for e in third.events] == [(a.id, 2)]
        await third.complete([e.seq for e in third.events])
    assert await queue.queue_depth(10) == 0


async def test_a_failed_batch_releases_its_rows(opened: tuple[GardenStore, RelayQueue]) -> None:
    store, queue = opened
    await PersonaGarden(store, "kent").plant("entry", "VALUE")
    with pytest.raises(RuntimeError):
        async with queue.claim("relay-1", 10, 30) as claim:
            assert len(claim.events) == 1
            raise RuntimeError("the index failed")
    async with queue.claim("relay-2", 10, 30) as again:
        assert len(again.events) == 1 and again.events[0].attempts == 0, "no attempt counted, nothing lost"


async def test_retry_hides_rows_until_due_and_counts_attempts(opened: tuple[GardenStore, RelayQueue]) -> None:
    store, queue = opened
    await PersonaGarden(store, "kent").plant("entry", "VALUE")
    async with queue.claim("relay-1", 10, 30) as claim:
        await claim.retry([e.seq for e in claim.events], "embed: boom", utcnow() + timedelta(hours=1))
    async with queue.claim("relay-1", 10, 30) as later:
        assert later.events == [], "a row whose next attempt is in the future is skipped"
    assert await queue.queue_depth(10) == 1
    peek = await store.outbox_peek("kent")
    assert peek[0].attempts == 1


async def test_dead_letter_records_and_removes(opened: tuple[GardenStore, RelayQueue]) -> None:
    store, queue = opened
    entry = await PersonaGarden(store, "kent").plant("entry", "VALUE")
    async with queue.claim("relay-1", 10, 30) as claim:
        await claim.dead_letter(claim.events, "embed", "ValueError: bad text")
    letters = await queue.dead_letters()
    assert [(d.entry_id, d.step, d.attempts) for d in letters] == [(entry.id, "embed", 1)]
    assert await queue.queue_depth(10) == 0


async def test_sqlite_lease_of_a_crashed_relay_expires(anchor_settings: Settings) -> None:
    if anchor_settings.postgres_url:
        pytest.skip("PostgreSQL releases a dead relay's claim with its transaction")
    store = await open_store(anchor_settings)
    try:
        queue = queue_on(store.anchor)
        await PersonaGarden(store, "kent").plant("entry", "VALUE")
        held = queue.claim("crashed", 10, 0.2)
        claim = await held.__aenter__()  # entered, never exited: the process died holding the lease
        claim.renewer.cancel()  # type: ignore[attr-defined]  # and with it the renewal of its lease
        assert len(claim.events) == 1
        async with queue.claim("other", 10, 30) as blocked:
            assert blocked.events == []

        async def take() -> int:
            async with queue.claim("other", 10, 30) as taken:
                await taken.complete([e.seq for e in taken.events])
                return len(taken.events)

        assert await wait_until(take, lambda n: n == 1, timeout=5, what="the expired lease reclaimed") == 1
        with pytest.raises(ClaimLostError):
            await claim.fence()
        with pytest.raises(ClaimLostError):
            await claim.complete([e.seq for e in claim.events])  # a late completion touches nothing it lost
        assert await queue.queue_depth(10) == 0
        await held.__aexit__(None, None, None)
    finally:
        await store.close()


@pytest.mark.parametrize("settle", ["complete", "retry", "dead_letter"])
async def test_a_lost_claim_settles_nothing(opened: tuple[GardenStore, RelayQueue], settle: str) -> None:
    store, queue = opened
    entry = await PersonaGarden(store, "kent").plant("entry", "VALUE")
    held = queue.claim("relay-1", 10, 60)
    claim = await held.__aenter__()
    await claim.fence()
    await take_claim_away(queue, "relay-1", entry.id)
    async with queue.claim("relay-2", 10, 60) as taken:  # the new owner holds the rows (SQLite: a live lease)
        assert [e.entry_id for e in taken.events] == [entry.id]
        with pytest.raises(ClaimLostError):
            await claim.fence()
        with pytest.raises(ClaimLostError):
            if settle == "complete":
                await claim.complete([e.seq for e in claim.events])
            elif settle == "retry":
                await claim.retry([e.seq for e in claim.events], "embed: boom", utcnow() + timedelta(hours=1))
            else:
                await claim.dead_letter(claim.events, "embed", "ValueError: bad text")
        with contextlib.suppress(ClaimLostError):
            await held.__aexit__(None, None, None)
        assert await queue.dead_letter_count() == 0, "no dead letter from a relay that lost the claim"
        assert await queue.queue_depth(10) == 1 and (await store.outbox_peek("kent"))[0].attempts == 0
        await taken.complete([e.seq for e in taken.events])
    assert await queue.queue_depth(10) == 0


async def test_sqlite_lease_is_renewed_while_the_batch_is_in_flight(anchor_settings: Settings) -> None:
    if anchor_settings.postgres_url:
        pytest.skip("PostgreSQL holds a claim for as long as its transaction")
    store = await open_store(anchor_settings)
    try:
        queue = queue_on(store.anchor)
        await PersonaGarden(store, "kent").plant("entry", "VALUE")
        # a 1 s lease renewed every third of it; a shorter one can lapse on a loaded machine (then the fencing
        # tests' case, not this one's)
        async with queue.claim("slow", 10, 1.0) as slow:
            await no_other_claim_for(queue, 3.0)
            await slow.fence()
            await slow.complete([e.seq for e in slow.events])
        assert await queue.queue_depth(10) == 0
    finally:
        await store.close()

"""Coherency by bucket on both anchors: what changed is re-read and the figure agrees with a full scan; an idle
measurement reads no bucket and scrolls nothing; points lost behind the relay's back are caught by the count."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from kgents.clock import utcnow
from kgents.config import Settings
from kgents.resonance.protocols import IndexPoint
from kgents.synapse.coherency import CoherencyReport
from kgents.synapse.coherency_buckets import BucketedCoherency, measure_changed, measure_full
from tests.synapse_env import INDEX_KINDS, Env, open_env


@pytest.fixture(params=INDEX_KINDS)
async def env(anchor_settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    async with open_env(anchor_settings, request.param) as opened:
        yield opened


class Scrolls:
    """Counts full scans of the index (`versions`) over the env's real index."""

    def __init__(self, env: Env) -> None:
        self.calls = 0
        inner = env.index.versions

        async def counted(collection: str) -> dict[uuid.UUID, tuple[str, int]]:
            self.calls += 1
            return await inner(collection)

        env.index.versions = counted  # type: ignore[method-assign]


def counts(report: CoherencyReport) -> tuple[int, int, int, int]:
    return report.matched, report.stale, report.missing, report.orphaned


async def _clear_outbox(env: Env) -> None:
    if env.queue.backend == "postgres":
        await env.queue.pool.execute("DELETE FROM garden_outbox")  # type: ignore[attr-defined]
        return
    db: Any = env.queue.db  # type: ignore[attr-defined]

    def work() -> None:
        with db.write() as conn:
            conn.execute("DELETE FROM garden_outbox")

    await db.run(work)


async def test_changed_buckets_agree_with_a_full_scan(env: Env) -> None:
    g = env.garden()
    entries = [await g.plant(f"entry number {i}", "VALUE") for i in range(40)]
    await env.relay().drain()
    target = env.state.active
    first = await measure_changed(env.queue, env.index, target)
    assert first.full and counts(first.report) == (40, 0, 0, 0)
    scrolls = Scrolls(env)
    await g.nurture(entries[0].id, confidence=0.9)  # stale: its event is dropped
    await g.compost(entries[1].id)
    await g.delete(entries[2].id)  # orphaned: the delete never reaches the index
    await _clear_outbox(env)
    late = await g.plant("planted after the relay ran", "VALUE")  # missing
    measured = await measure_changed(env.queue, env.index, target)
    assert measured.buckets_read <= 4 and scrolls.calls == 0
    full = await env.coherency()
    assert not measured.full and measured.counted  # the orphan was found through its tombstone
    assert counts(measured.report) == counts(full) and counts(full)[1:] != (0, 0, 0)
    assert late.id not in {e.id for e in entries}


async def test_an_idle_measure_reads_no_bucket_and_no_scroll(env: Env) -> None:
    g = env.garden()
    for i in range(30):
        await g.plant(f"idle entry {i}", "VALUE")
    await env.relay().drain()
    await measure_changed(env.queue, env.index, env.state.active)
    scrolls = Scrolls(env)
    again = await measure_changed(env.queue, env.index, env.state.active)
    assert (again.buckets_read, again.full, scrolls.calls) == (0, False, 0)
    assert again.counted and again.report.coherent and again.report.matched == 30


async def test_a_disagreeing_bucket_is_read_until_it_agrees(env: Env) -> None:
    g = env.garden()
    entry = await g.plant("one entry", "VALUE")
    await env.relay().drain()
    await measure_changed(env.queue, env.index, env.state.active)
    await g.nurture(entry.id, confidence=0.95)
    stale = await measure_changed(env.queue, env.index, env.state.active)
    assert (stale.buckets_read, counts(stale.report)) == (1, (0, 1, 0, 0))
    await env.relay().drain()
    healed = await measure_changed(env.queue, env.index, env.state.active)
    assert (healed.buckets_read, counts(healed.report)) == (1, (1, 0, 0, 0))
    settled = await measure_changed(env.queue, env.index, env.state.active)
    assert settled.buckets_read == 0


async def test_points_lost_behind_the_relays_back_are_caught_by_the_count(env: Env) -> None:
    g = env.garden()
    entries = [await g.plant(f"kept {i}", "VALUE") for i in range(10)]
    await env.relay().drain()
    col = env.state.active.collection
    measurer = BucketedCoherency(env.queue, env.index)
    await measurer.measure(env.state.active)
    await env.index.delete(col, [entries[0].id])  # no anchor write explains it
    stored = await env.index.retrieve(col, [entries[1].id])
    vector = env.embedder.embed(["ghost"])[0]
    await env.index.upsert(col, [IndexPoint(uuid.uuid4(), vector, stored[entries[1].id])])
    await env.index.delete(col, [entries[2].id])
    first = await measurer.measure(env.state.active)
    assert not first.counted and not first.full  # once could be a write landing between two reads
    second = await measurer.measure(env.state.active)
    assert second.full and counts(second.report) == (8, 0, 2, 1)
    third = await measurer.measure(env.state.active)
    assert (third.full, third.buckets_read, counts(third.report)) == (False, 3, (8, 0, 2, 1))


async def test_one_relay_holds_the_measuring_lease(env: Env) -> None:
    ledger = env.queue.buckets()
    assert await ledger.take_lease("relay-a", 30.0)
    assert not await ledger.take_lease("relay-b", 30.0)
    assert await ledger.take_lease("relay-a", 0.0)  # its own: renewed (here to expire at once)
    assert await ledger.take_lease("relay-b", 30.0)  # expired: taken over
    await ledger.release("relay-a")  # not its lease: nothing changes
    assert not await ledger.take_lease("relay-a", 30.0)
    await ledger.release("relay-b")
    assert await ledger.take_lease("relay-a", 30.0)
    assert await ledger.figure() is None
    await ledger.publish({"coherency_with_truth": 1.0, "matched": 3}, "relay-b")
    figure = await ledger.figure()
    assert figure is not None and figure.measured_by == "relay-b" and figure.figures["matched"] == 3
    assert utcnow() - figure.measured_at < timedelta(minutes=1)


async def test_a_full_measure_rewrites_every_bucket(env: Env) -> None:
    g = env.garden()
    for i in range(5):
        await g.plant(f"full {i}", "VALUE")
    await env.relay().drain()
    measured = await measure_full(env.queue, env.index, env.state.active)
    assert measured.full and measured.report.coherent
    assert await env.queue.buckets().measured(env.state.active.collection) >= 1


async def test_of_two_running_relays_one_measures_and_both_show_its_figure(env: Env) -> None:
    import dataclasses

    from tests.helpers import wait_until
    from tests.synapse_env import FAST

    g = env.garden()
    for i in range(3):
        await g.plant(f"measured once {i}", "VALUE")
    config = dataclasses.replace(FAST, coherency_interval_s=0.2)
    first, second = env.start(env.relay(config)), env.start(env.relay(config))
    ledger = env.queue.buckets()
    figure = await wait_until(
        ledger.figure, lambda f: f is not None and f.figures["matched"] == 3, timeout=15, what="a published figure"
    )
    assert figure is not None and figure.measured_by in (first.relay_id, second.relay_id)
    measuring = [r for r in (first, second) if r.stats.coherency is not None]
    assert [r.relay_id for r in measuring] == [figure.measured_by], "exactly one relay measures"

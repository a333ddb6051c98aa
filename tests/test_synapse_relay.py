"""The relay end to end on both anchors: every change reaches the index, failures never lose or block
anything."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kgents.breaker import BreakerState
from kgents.config import Settings
from kgents.garden.filters import EntryFilter
from kgents.synapse.coherency import reconcile
from kgents.synapse.fusion import RecallMode
from kgents.synapse.metrics import collect_metrics
from kgents.synapse.relay import BatchOutcome
from tests.helpers import wait_until
from tests.synapse_env import FAST, INDEX_KINDS, Env, open_env
from tests.synapse_support import PoisonEmbedder

DENSE = RecallMode.DENSE
"""These tests check the dense signal the relay writes (the lexical one has tests/test_recall.py)."""


@pytest.fixture(params=INDEX_KINDS)
async def env(anchor_settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    async with open_env(anchor_settings, request.param) as opened:
        yield opened


async def coherent(env: Env, what: str = "coherency 1.0", limit_s: float = 15.0) -> None:
    await wait_until(env.coherency, lambda r: r.coherent, timeout=limit_s, what=what)


async def found(env: Env, persona: str, query: str) -> list[uuid.UUID]:
    return [h.entry.id for h in await env.recall().recall(persona, query, 10, mode=DENSE)]


async def test_insert_becomes_searchable(env: Env) -> None:
    assert env.index.backend in ("qdrant", "edge"), "real adapters, not stand-ins"
    env.start()
    entry = await env.garden().plant("I prefer minimal code", "PREFERENCE")
    ids = await wait_until(
        lambda: found(env, "kent", "I prefer minimal code"),
        lambda ids: entry.id in ids,
        what="the entry in search results",
    )
    assert ids[0] == entry.id
    await coherent(env)


async def test_content_update_reembeds_but_confidence_update_does_not(env: Env) -> None:
    relay = env.relay()
    g = env.garden()
    entry = await g.plant("tabs over spaces", "PREFERENCE")
    await relay.drain()
    assert env.embedder.texts.count("tabs over spaces") == 1
    await g.nurture(entry.id, confidence=0.95, evidence="said so twice")
    await relay.drain()
    assert env.embedder.texts.count("tabs over spaces") == 1, "a confidence change must not re-embed"
    stored = (await env.index.retrieve(env.state.active.collection, [entry.id]))[entry.id]
    assert stored.confidence == 0.95 and stored.version == 2
    await g.update(entry.id, content="spaces over tabs")
    await relay.drain()
    assert env.embedder.texts.count("spaces over tabs") == 1
    assert relay.stats.payload_only >= 1
    await coherent(env)


async def test_delete_removes_the_point(env: Env) -> None:
    relay = env.relay()
    g = env.garden()
    entry = await g.plant("delete me soon", "INSIGHT")
    await relay.drain()
    assert entry.id in await env.index.versions(env.state.active.collection)
    await g.delete(entry.id)
    await relay.drain()
    assert entry.id not in await env.index.versions(env.state.active.collection)
    await coherent(env)


async def test_paraphrase_search_finds_the_entry(env: Env) -> None:
    relay = env.relay()
    g = env.garden()
    wanted = await g.plant("I prefer minimal code", "PREFERENCE")
    await g.plant("the weather is sunny today", "INSIGHT")
    await g.plant("my cat sleeps all afternoon", "BEHAVIOR")
    await g.plant("I enjoy long hikes in the mountains", "PREFERENCE")
    await relay.drain()
    assert (await found(env, "kent", "keep code small and simple"))[0] == wanted.id
    assert (await found(env, "kent", "short simple functions"))[0] == wanted.id
    assert wanted.id in await found(env, "kent", "keep things small")


async def test_search_never_crosses_personas_and_applies_filters(env: Env) -> None:
    relay = env.relay()
    mine = await env.garden("kent").plant("keep code small and simple", "PREFERENCE", tags=["code"])
    theirs = await env.garden("ada").plant("keep code small and simple", "PREFERENCE", tags=["code"])
    low = await env.garden("kent").plant("keep code small please", "PATTERN", confidence=0.1)
    await relay.drain()
    kent = await found(env, "kent", "keep code small and simple")
    assert mine.id in kent and theirs.id not in kent
    assert (await found(env, "ada", "keep code small and simple")) == [theirs.id]
    search = env.recall()
    hits = await search.recall("kent", "keep code small", filters=EntryFilter(min_confidence=0.3), mode=DENSE)
    assert [h.entry.id for h in hits] == [mine.id]
    hits = await search.recall("kent", "keep code small", filters=EntryFilter(entry_types=("PATTERN",)), mode=DENSE)
    assert [h.entry.id for h in hits] == [low.id]
    hits = await search.recall("kent", "keep code small", filters=EntryFilter(tags=("code",)), mode=DENSE)
    assert [h.entry.id for h in hits] == [mine.id]


async def test_hits_whose_row_is_gone_are_skipped(env: Env) -> None:
    relay = env.relay()
    entry = await env.garden().plant("ephemeral thought", "INSIGHT")
    await relay.drain()
    await env.garden().delete(entry.id)  # the relay has not run: the point is still there
    assert entry.id in await env.index.versions(env.state.active.collection)
    assert await found(env, "kent", "ephemeral thought") == []


async def test_index_outage_opens_the_circuit_then_the_backlog_drains(env: Env) -> None:
    env.index.down = True
    relay = env.start()
    g = env.garden()
    planted = [await g.plant(f"memory number {i}", "PATTERN") for i in range(20)]
    assert await g.count() == 20, "writes commit while the index is down"
    await wait_until(lambda: _async(relay.breaker.state), lambda s: s is BreakerState.OPEN, what="circuit OPEN")
    assert relay.stats.processed == 0
    assert (await env.queue.queue_depth(1000)) == 20
    env.index.down = False
    await coherent(env, "backlog drained after the outage")
    assert relay.breaker.state is BreakerState.CLOSED
    assert await env.queue.dead_letter_count() == 0, "an outage is not the entries' fault"
    points = await env.index.versions(env.state.active.collection)
    assert all(e.id in points for e in planted)


async def _async(value: object) -> object:
    return value


async def test_poison_entry_goes_to_dead_letter_and_others_flow(env: Env) -> None:
    poison = PoisonEmbedder(env.embedder)
    relay = env.start(env.relay(embedder=poison))
    g = env.garden()
    good1 = await g.plant("a perfectly normal entry", "VALUE")
    bad = await g.plant("this one is POISON for the model", "VALUE")
    good2 = await g.plant("another normal entry", "VALUE")
    letters = await wait_until(env.queue.dead_letters, lambda d: len(d) == 1, timeout=30, what="a dead letter")
    assert letters[0].entry_id == bad.id and letters[0].step == "embed" and letters[0].attempts == FAST.max_attempts
    assert "cannot embed" in letters[0].error
    points = await env.index.versions(env.state.active.collection)
    assert good1.id in points and good2.id in points and bad.id not in points
    await wait_until(lambda: env.queue.queue_depth(100), lambda n: n == 0, what="queue empty")
    stats = await wait_until(lambda: _async(relay.stats), lambda st: st.dead == 1, what="the relay counted it")
    assert stats.retried == FAST.max_attempts - 1
    metrics = await collect_metrics(env.queue)
    assert metrics.dead_letters == 1
    # the operator fixes the entry; reconcile (or the next change) brings it in
    await g.update(bad.id, content="no longer a problem")
    await coherent(env)


async def test_out_of_order_and_replayed_events_converge(env: Env) -> None:
    relay = env.relay()
    g = env.garden()
    entry = await g.plant("first words", "INSIGHT")
    for i in range(3):
        entry = await g.update(entry.id, content=f"revision {i}")
    await _reverse_outbox(env)  # the newest event is now due first, the oldest last
    await relay.drain()
    stored = (await env.index.retrieve(env.state.active.collection, [entry.id]))[entry.id]
    assert stored.version == entry.version
    embeds = len(env.embedder.texts)
    await _replay_audit(env)  # every historical event again, after the fact
    await relay.drain()
    stored = (await env.index.retrieve(env.state.active.collection, [entry.id]))[entry.id]
    assert stored.version == entry.version
    assert len(env.embedder.texts) == embeds, "a replay of applied events must not re-embed"
    await coherent(env)


async def _reverse_outbox(env: Env) -> None:
    if env.queue.backend == "postgres":
        await env.queue.pool.execute(  # type: ignore[attr-defined]
            "UPDATE garden_outbox SET next_attempt_at = now() - (seq * interval '1 second')"
        )
        return
    a = env.queue.db  # type: ignore[attr-defined]

    def work() -> None:
        with a.write() as conn:
            conn.execute(
                "UPDATE garden_outbox SET next_attempt_at = "
                "strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now', '-' || seq || ' seconds')"
            )

    await a.run(work)


async def _replay_audit(env: Env) -> None:
    sql = (
        "INSERT INTO garden_outbox (entry_id, persona, operation, entry_version)"
        " SELECT entry_id, persona, operation, entry_version FROM garden_audit ORDER BY seq"
    )
    if env.queue.backend == "postgres":
        await env.queue.pool.execute(sql)  # type: ignore[attr-defined]
        return
    a = env.queue.db  # type: ignore[attr-defined]

    def work() -> None:
        with a.write() as conn:
            conn.execute(sql)

    await a.run(work)


async def test_two_relays_in_parallel_never_double_apply(env: Env) -> None:
    seen: list[int] = []

    def record(outcome: BatchOutcome) -> None:
        seen.extend(outcome.completed)

    # A long lease: on a loaded machine a 5 s lease can run out mid-batch, which is the fencing tests' business;
    # here both relays keep their claims and must still never apply one entry twice.
    steady = dataclasses.replace(FAST, lease_s=60.0)
    relays = [env.relay(steady), env.relay(steady)]
    for relay in relays:
        relay.on_batch = record
        env.start(relay)
    g = env.garden()
    entries = await g.plant_many([g.new_entry(f"parallel entry {i}", "PATTERN") for i in range(300)])
    for e in entries[:100]:
        await g.nurture(e.id, confidence=0.8)
    await coherent(env, limit_s=30)
    await wait_until(lambda: env.queue.queue_depth(1000), lambda n: n == 0, what="queue empty")

    async def recorded() -> int:  # a batch's rows leave the queue a moment before its outcome is reported
        return len(seen)

    await wait_until(recorded, lambda n: n >= 400, timeout=30, what="every batch reported")
    assert len(seen) == len(set(seen)) == 400, "every outbox event completed exactly once"
    assert env.index.max_concurrent_per_entry == 1, "two relays never wrote one entry at the same time"
    assert sum(r.stats.processed for r in relays) == 400


async def test_reconcile_repairs_missing_stale_and_orphaned(env: Env) -> None:
    relay = env.relay()
    g = env.garden()
    entries = [await g.plant(f"entry {i}", "VALUE") for i in range(6)]
    await relay.drain()
    col = env.state.active.collection
    await env.index.delete(col, [entries[0].id])  # missing
    await _clear_outbox(env)
    await g.nurture(entries[1].id, confidence=0.9)  # stale (its event is dropped below)
    await _clear_outbox(env)
    ghost = uuid.uuid4()
    point = await env.index.retrieve(col, [entries[2].id])
    from kgents.resonance.protocols import IndexPoint

    vec = env.embedder.embed(["ghost"])[0]
    await env.index.upsert(col, [IndexPoint(ghost, vec, point[entries[2].id])])  # orphaned
    before = await env.coherency()
    assert (before.matched, before.stale, before.missing, before.orphaned) == (4, 1, 1, 1)
    assert before.coherency_with_truth == pytest.approx(4 / 7)
    report = await reconcile(env.queue, env.index, env.resolve, await env.current_state())
    assert report.before.total == 7 and report.after.coherent and report.after.coherency_with_truth == 1.0
    assert report.repaired == 3


async def _clear_outbox(env: Env) -> None:
    if env.queue.backend == "postgres":
        await env.queue.pool.execute("DELETE FROM garden_outbox")  # type: ignore[attr-defined]
        return
    a = env.queue.db  # type: ignore[attr-defined]

    def work() -> None:
        with a.write() as conn:
            conn.execute("DELETE FROM garden_outbox")

    await a.run(work)


async def test_metrics_and_heartbeat(env: Env) -> None:
    # a heartbeat every second (alive for a few): FAST's 0.2 s beat can look dead on a loaded machine
    relay = env.start(env.relay(dataclasses.replace(FAST, heartbeat_interval_s=1.0)))
    g = env.garden()
    for i in range(5):
        await g.plant(f"metric entry {i}", "VALUE")
    await coherent(env)
    # the anchor's totals count the batch when it settles; its latency arrives with the relay's next heartbeat
    metrics = await wait_until(
        lambda: collect_metrics(env.queue),
        lambda m: m.relays_alive == 1 and m.processed >= 5 and m.latency_p50_ms is not None,
        timeout=30,
        what="a live relay in the metrics, with the batch's latency",
    )
    data = metrics.to_dict()
    assert data["queue_depth"] == 0 and data["oldest_pending_age_s"] is None
    assert data["latency_p50_ms"] is not None and data["latency_p95_ms"] >= data["latency_p50_ms"]
    assert data["circuit_state"] == "CLOSED" and data["last_heartbeat_age_s"] < 5
    assert data["relays"][0]["relay_id"] == relay.relay_id
    relay.stop()
    await env.stop_all()
    assert (await collect_metrics(env.queue)).relays_alive == 0, "a clean stop removes the heartbeat"


async def test_reindex_to_a_new_embedder_switches_without_downtime(env: Env) -> None:
    from kgents.synapse.reindex import reindex
    from kgents.synapse.state import collection_prefix
    from tests.synapse_support import CountingEmbedder

    second = CountingEmbedder(env.embedder.inner, name="test-second-embedder")
    env.extra_embedders[second.name] = second
    relay = env.start()
    g = env.garden()
    entries = [await g.plant(f"reindexed memory {i}", "VALUE") for i in range(40)]
    await coherent(env)
    old = (await env.current_state()).active
    searching = True
    misses = 0

    async def keep_searching() -> int:
        nonlocal misses
        count = 0
        while searching:
            if not await found(env, "kent", "reindexed memory 7"):
                misses += 1
            count += 1
        return count

    import asyncio

    searcher = asyncio.create_task(keep_searching())
    late = []

    def progress(_n: int) -> None:
        late.append(asyncio.ensure_future(g.plant(f"planted during the reindex {len(late)}", "VALUE")))

    schema = env.settings.postgres_schema if env.settings.postgres_url else None
    report = await reindex(
        env.queue,
        env.index,
        second,
        env.resolve,
        await env.current_state(),
        collection_prefix(env.queue.backend, schema),
        progress,
    )
    await asyncio.gather(*late)
    searching = False
    assert await searcher > 0 and misses == 0, "searches found the entry throughout"
    state = await env.current_state()
    assert state.active.embedder == "test-second-embedder" and state.pending is None
    assert report.copied >= len(entries) and report.old == old
    assert old.collection not in {c.name for c in await env.index.collections()}
    await coherent(env, "new collection coherent, including entries planted during the reindex")
    assert len(second.texts) >= len(entries)
    assert relay.stats.last_error is None or "index" not in relay.stats.last_error


async def test_notify_wakes_the_relay_without_polling(env: Env) -> None:
    if env.queue.backend != "postgres":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; the embedded relay is woken in-process or polls")
    from dataclasses import replace

    env.start(env.relay(replace(FAST, poll_interval_s=60.0)))
    await wait_until(lambda: collect_metrics(env.queue), lambda m: m.relays_alive == 1, what="relay up")
    entry = await env.garden().plant("woken by a notification", "INSIGHT")
    col = env.state.active.collection
    await wait_until(lambda: env.index.versions(col), lambda v: entry.id in v, timeout=5, what="applied at once")


async def test_a_lost_listen_connection_is_replaced(env: Env) -> None:
    if env.queue.backend != "postgres":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    from dataclasses import replace

    queue: Any = env.queue
    env.start(env.relay(replace(FAST, poll_interval_s=60.0)))
    await wait_until(lambda: _async(queue.listening), what="listening")
    old_pid = queue.listen_pid
    await queue.pool.execute("SELECT pg_terminate_backend($1)", old_pid)
    await wait_until(
        lambda: _async((queue.listening, queue.listen_pid)),
        lambda v: v[0] and v[1] != old_pid,
        what="a new LISTEN connection",
    )
    entry = await env.garden().plant("heard on the new connection", "INSIGHT")
    col = env.state.active.collection
    await wait_until(lambda: env.index.versions(col), lambda v: entry.id in v, timeout=5, what="applied at once")


async def test_a_replanted_id_lands_with_its_new_content(env: Env) -> None:
    relay = env.relay()
    g = env.garden()
    entry = await g.plant("the old text about sailing boats", "INSIGHT")
    for _ in range(4):
        entry = await g.nurture(entry.id)
    await relay.drain()
    await g.delete(entry.id)
    await relay.drain()
    again = await g.plant("a new text about baking bread", "INSIGHT", entry_id=entry.id)
    await relay.drain()
    stored = (await env.index.retrieve(env.state.active.collection, [entry.id]))[entry.id]
    assert stored.version == again.version == entry.version + 1
    assert await found(env, "kent", "a new text about baking bread") == [entry.id]
    hits = await env.recall().recall("kent", "baking bread", 1, mode=DENSE)
    assert hits[0].entry.content == "a new text about baking bread" and hits[0].score > 0.5
    await coherent(env)


async def test_a_replanted_id_lands_even_when_the_delete_was_never_relayed(env: Env) -> None:
    relay = env.relay()
    g = env.garden()
    entry = await g.plant("the old text about sailing boats", "INSIGHT")
    entry = await g.nurture(entry.id)
    await relay.drain()
    await g.delete(entry.id)
    again = await g.plant("a new text about baking bread", "INSIGHT", entry_id=entry.id)
    await relay.drain()  # the DELETE and the INSERT in one batch: the current row wins
    stored = (await env.index.retrieve(env.state.active.collection, [entry.id]))[entry.id]
    assert stored.version == again.version == 3
    assert env.embedder.texts[-1] == "a new text about baking bread"
    await coherent(env)


async def test_a_half_open_trial_that_finds_nothing_to_do_is_given_back(env: Env) -> None:
    relay = env.relay()
    relay.breaker.record_failure(0.0)
    relay.breaker.record_failure(0.0)  # open since long ago (the relay's clock is monotonic): the next batch tries
    assert (await relay.run_once()).claimed == 0  # the trial, with nothing due: no verdict
    assert relay.breaker.state is BreakerState.HALF_OPEN and not relay.breaker.trial_out
    entry = await env.garden().plant("a trial that reaches the index", "PREFERENCE")
    assert (await relay.run_once()).claimed == 1, "the next batch makes the trial; the breaker is not stuck"
    assert relay.breaker.state is BreakerState.CLOSED
    assert entry.id in await env.index.versions(env.state.active.collection)

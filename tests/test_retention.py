"""A bounded anchor on both anchors: tombstones go once the index was seen to have applied them, dead letters and
audit rows past their retention go, and nothing else does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from kgents.clock import utcnow
from kgents.config import ConfigError, Settings
from kgents.synapse.coherency_buckets import measure_changed
from kgents.synapse.metrics import RelayStats
from kgents.synapse.relay_beats import RelayBeats
from kgents.synapse.retention import Cutoffs, Retention
from tests.synapse_env import Env, open_env


@pytest.fixture
async def env(anchor_settings: Settings) -> AsyncIterator[Env]:
    async with open_env(anchor_settings, "qdrant") as opened:
        yield opened


async def scalar(env: Env, sql: str) -> Any:
    queue: Any = env.queue
    if queue.backend == "postgres":
        return await queue.pool.fetchval(sql)
    return await queue.db.run(lambda: queue.db.conn.execute(sql).fetchone()[0])


def cut(env: Env, *, audit_rows: int | None = None, audit_days_ago: float | None = None) -> Cutoffs:
    now = utcnow() + timedelta(seconds=1)
    audit_before = None if audit_days_ago is None else now - timedelta(days=audit_days_ago)
    return Cutoffs(env.state.active.collection, now, None, audit_before, audit_rows)


async def test_a_tombstone_goes_once_the_index_was_seen_without_the_point(env: Env) -> None:
    g = env.garden()
    kept, gone, pending = [await g.plant(f"tombstoned {i}", "VALUE") for i in range(3)]
    await env.relay().drain()
    await g.delete(gone.id)
    await env.relay().drain()
    ledger = env.queue.buckets()
    assert (await ledger.prune(cut(env))).tombstones == 0, "not measured since the delete: kept"
    await measure_changed(env.queue, env.index, env.state.active)
    await g.delete(pending.id)  # its delete is not applied: its tombstone stays
    done = await ledger.prune(cut(env))
    left = await scalar(env, "SELECT count(*) FROM garden_tombstone")
    assert done.tombstones == 1 and left == 1
    assert await scalar(env, "SELECT count(*) FROM persona_garden") == 1 and kept.id


async def test_dead_letters_and_audit_past_their_retention_go(env: Env) -> None:
    g = env.garden()
    for i in range(5):
        await g.plant(f"audited {i}", "VALUE")
    ledger = env.queue.buckets()
    assert (await ledger.prune(cut(env))).audit == 0, "the default keeps the whole audit"
    assert (await ledger.prune(cut(env, audit_rows=2))).audit == 3
    assert await scalar(env, "SELECT count(*) FROM garden_audit") == 2
    assert (await ledger.prune(cut(env, audit_days_ago=0))).audit == 2
    await _dead_letter(env, days_ago=40)
    await _dead_letter(env, days_ago=1)
    now = utcnow()
    old = Cutoffs(env.state.active.collection, now, now - timedelta(days=30), None, None)
    assert (await ledger.prune(old)).dead_letters == 1
    assert await scalar(env, "SELECT count(*) FROM synapse_dead_letter") == 1


async def test_the_measuring_relay_prunes(env: Env) -> None:
    g = env.garden()
    entries = [await g.plant(f"pruned by the relay {i}", "VALUE") for i in range(4)]
    await env.relay().drain()
    for e in entries[:2]:
        await g.delete(e.id)
    await env.relay().drain()
    retention = Retention(audit_keep_rows=3, tombstone_grace_s=-1.0)
    beats = RelayBeats(
        env.queue, env.index, RelayStats(), "relay-pruning", utcnow(),
        heartbeat_interval_s=1.0, coherency_interval_s=1.0, retention=retention,
    )  # fmt: skip
    assert await beats.measure_coherency()
    assert beats.pruned.to_dict() == {"tombstones": 2, "dead_letters": 0, "audit": 3}


def test_retention_settings_are_checked() -> None:
    settings = Settings.from_env({"KGENTS_AUDIT_KEEP_DAYS": "90", "KGENTS_AUDIT_KEEP_ROWS": "1000"})
    assert (settings.audit_keep_days, settings.audit_keep_rows, settings.dead_letter_keep_days) == (90.0, 1000, 30.0)
    assert Settings.from_env({}).audit_keep_days is None
    with pytest.raises(ConfigError, match="KGENTS_AUDIT_KEEP_ROWS"):
        Settings.from_env({"KGENTS_AUDIT_KEEP_ROWS": "0"})


async def _dead_letter(env: Env, *, days_ago: float) -> None:
    when = utcnow() - timedelta(days=days_ago)
    queue: Any = env.queue
    head = (
        "INSERT INTO synapse_dead_letter (outbox_seq, entry_id, persona, operation, entry_version, step, error,"
        " attempts, failed_at) VALUES (0, '00000000-0000-0000-0000-000000000001', 'kent', 'INSERT', 1, 'embed',"
        " 'boom', 5, "
    )
    if queue.backend == "postgres":
        await queue.pool.execute(head + "$1)", when)
        return
    stamp = when.isoformat(timespec="microseconds")

    def work() -> None:
        with queue.db.write() as conn:
            conn.execute(head + "?)", (stamp,))

    await queue.db.run(work)


async def test_the_audit_of_an_update_keeps_only_what_changed(env: Env) -> None:
    g = env.garden()
    e = await g.plant("a long memory whose text an update leaves alone " * 8, "VALUE", tags=["kept"])
    await g.nurture(e.id, confidence=0.8)
    history = await g.history(e.id)
    update = history[-1]
    assert update.old is not None and update.new is not None and "content" not in update.new
    assert set(update.changed_fields()) == set(update.new) == set(update.old)
    assert {"confidence", "version"} <= set(update.new) and update.new["confidence"] == 0.8
    assert history[0].new is not None and history[0].new["content"] == e.content, "a plant keeps the whole row"

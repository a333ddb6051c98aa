"""One suite over both Sparks (Redis, embedded) and both anchors (SQLite, PostgreSQL): recovery, TTL, corruption,
isolation, concurrency and validation behave the same everywhere."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from dataclasses import replace

import pytest

from kgents.config import Settings
from kgents.errors import ConfigError, ValidationError
from kgents.soul.model import DialogueMode, SoulDataError
from kgents.soul.service import RecoverySource, SoulService
from kgents.soul.session import open_service
from kgents.soul.spark import ModeChange
from tests.helpers import kgents_env, wait_until


async def test_round_trip_new_then_cache(service: SoulService) -> None:
    first = await service.recover("k1")
    assert first.source is RecoverySource.NEW and first.state.revision == 1
    changed = await service.set_mode("k1", "advise")
    changed = await service.set_eigenvector("k1", "joy", 0.4, 0.8)
    changed = await service.record_interaction("k1", tokens=250)
    again = await service.recover("k1")
    assert again.source is RecoverySource.CACHE
    assert again.state == changed
    assert again.state.mode is DialogueMode.ADVISE and again.state.tokens == 250 and again.state.revision == 4
    assert again.elapsed_ms < 1000


async def test_cache_miss_recovers_from_snapshot_and_rewarms(service: SoulService) -> None:
    saved = await service.set_mode("k1", "explore")
    assert await service.spark.delete("kent", "k1")
    cold = await service.recover("k1")
    assert cold.source is RecoverySource.SNAPSHOT and cold.state == saved
    warm = await service.recover("k1")
    assert warm.source is RecoverySource.CACHE and warm.state == saved


async def test_ttl_expiry_then_recovery_from_snapshot(soul_settings: Settings) -> None:
    short = await open_service(replace(soul_settings, soul_ttl_seconds=0.3), strict_spark=True)
    try:
        saved = await short.set_mode("k1", "challenge")
        ttl = await short.cache_ttl("k1")
        assert ttl is not None and 0 < ttl <= 0.3
        await wait_until(lambda: short.spark.get("kent", "k1"), lambda v: v is None, timeout=5, what="key expiry")
        recovered = await short.recover("k1")
        assert recovered.source is RecoverySource.SNAPSHOT and recovered.state == saved
    finally:
        await short.close()


async def test_corrupt_cache_recovers_from_snapshot_with_a_warning(
    service: SoulService, caplog: pytest.LogCaptureFixture
) -> None:
    saved = await service.set_eigenvector("k1", "aesthetic", 0.6)
    await service.spark.put_raw("kent", "k1", '{"soul_id": "k1", "mode": tru', 60)
    with caplog.at_level(logging.WARNING, logger="kgents.soul"):
        recovered = await service.recover("k1")
    assert recovered.source is RecoverySource.SNAPSHOT and recovered.state == saved
    assert recovered.warnings and "unreadable" in recovered.warnings[0]
    assert any("cached state is unreadable" in r.getMessage() for r in caplog.records)
    assert (await service.recover("k1")).source is RecoverySource.CACHE  # re-warmed with good data


async def test_another_souls_data_under_the_key_is_not_trusted(service: SoulService) -> None:
    theirs = await service.set_mode("k2", "explore")
    mine = await service.set_mode("k1", "advise")
    await service.spark.put_raw("kent", "k1", theirs.evolve(revision=999).to_json(), 60)
    recovered = await service.recover("k1")
    assert recovered.source is RecoverySource.SNAPSHOT and recovered.state == mine
    assert "belongs to soul 'k2'" in recovered.warnings[0]
    again = await service.recover("k1")  # the foreign entry (with its high revision) did not block the re-warm
    assert again.source is RecoverySource.CACHE and again.state == mine


async def test_corrupt_snapshot_is_a_clear_error(service: SoulService) -> None:
    await service.recover("k1")
    await service.snapshots.put("kent", "k1", 2, "not json at all", expected_revision=1)
    await service.spark.delete("kent", "k1")
    with pytest.raises(SoulDataError, match="the snapshot of soul k1 is unreadable: soul data is not valid JSON"):
        await service.recover("k1")


async def test_two_souls_and_two_personas_never_share_state(soul_settings: Settings, service: SoulService) -> None:
    await service.set_mode("alpha", "challenge")
    await service.set_eigenvector("alpha", "joy", 0.05)
    beta = await service.recover("beta")
    assert beta.source is RecoverySource.NEW and beta.state.mode is DialogueMode.REFLECT
    assert beta.state.eigenvectors["joy"].value == 0.75
    other = await open_service(replace(soul_settings, persona="someone"), strict_spark=True)
    try:
        theirs = await other.recover("alpha")
        assert theirs.source is RecoverySource.NEW and theirs.state.persona == "someone"
        assert theirs.state.mode is DialogueMode.REFLECT
        assert await other.souls() == [("alpha", 1)]
    finally:
        await other.close()
    assert [s for s, _ in await service.souls()] == ["alpha", "beta"]


async def test_concurrent_writers_in_two_services_lose_no_update(soul_settings: Settings) -> None:
    a = await open_service(soul_settings, strict_spark=True)
    b = await open_service(soul_settings, strict_spark=True)
    try:
        await a.recover("k1")
        await b.recover("k1")
        await asyncio.gather(*(s.record_interaction("k1", tokens=10) for _ in range(10) for s in (a, b)))
        final = (await a.recover("k1", use_cache=False)).state
        assert final.interactions == 20 and final.tokens == 200 and final.revision == 21
    finally:
        await a.close()
        await b.close()


async def test_a_stale_save_is_refused(service: SoulService) -> None:
    from kgents.errors import ConflictError

    read = (await service.recover("k1")).state
    await service.set_mode("k1", "advise")
    with pytest.raises(ConflictError, match="changed in another instance since revision 1"):
        await service.save(read.with_mode("explore"))
    assert (await service.load("k1")).mode is DialogueMode.ADVISE


async def test_an_older_revision_never_overwrites_a_newer_cache_entry(service: SoulService) -> None:
    old = (await service.recover("k1")).state
    new = await service.set_mode("k1", "explore")
    assert not await service.spark.put("kent", "k1", old.to_json(), old.revision, 60)
    assert (await service.recover("k1")).state == new


async def test_bad_input_is_rejected_precisely_and_changes_nothing(service: SoulService) -> None:
    before = await service.set_mode("k1", "advise")
    choices = r"mode must be one of REFLECT, ADVISE, CHALLENGE, EXPLORE \(got 'LOUD'\)"
    with pytest.raises(ValidationError, match=choices):
        await service.set_mode("k1", "LOUD")
    with pytest.raises(ValidationError, match=r"eigenvector 'gratitude' value must be in \[0, 1\] \(got 1.01\)"):
        await service.set_eigenvector("k1", "gratitude", 1.01)
    with pytest.raises(ValidationError, match=r"eigenvector 'joy' value must be in \[0, 1\] \(got nan\)"):
        await service.set_eigenvector("k1", "joy", float("nan"))
    with pytest.raises(ValidationError, match="soul id must be"):
        await service.recover("../../etc")
    assert await service.load("k1") == before


async def test_metrics_count_hits_misses_and_latency(service: SoulService) -> None:
    await service.recover("k1")
    for _ in range(5):
        await service.recover("k1")
    metrics = await service.metrics()
    assert metrics.hits == 5 and metrics.misses == 1
    assert metrics.latency_p50_ms is not None and metrics.latency_p95_ms is not None
    assert metrics.connected_instances >= 1 and metrics.reachable
    assert metrics.used_memory_bytes is not None and metrics.used_memory_bytes > 0


async def test_pubsub_reaches_another_service_on_redis_and_says_it_needs_redis_otherwise(
    soul_settings: Settings, service: SoulService
) -> None:
    if not service.spark.supports_pubsub:
        with pytest.raises(ConfigError, match="needs Redis: set KGENTS_REDIS_URL"):
            async for _ in service.watch("k1"):
                pass
        assert await service.announce((await service.recover("k1")).state, None) == 0
        return
    other = await open_service(soul_settings, strict_spark=True)
    got: list[ModeChange] = []

    async def listen() -> None:
        async for change in service.watch("k1"):
            got.append(change)

    task = asyncio.create_task(listen())
    try:
        await wait_until(lambda: service.spark.listeners("kent", "k1"), lambda n: n >= 1, what="a subscriber")  # type: ignore[attr-defined]
        await other.set_mode("k1", "challenge")

        async def heard() -> list[ModeChange]:
            return got

        await wait_until(heard, bool, timeout=10, what="the other service's mode change")
        assert [(c.mode, c.previous, c.instance_id) for c in got] == [
            (DialogueMode.CHALLENGE, DialogueMode.REFLECT, other.spark.instance_id)
        ]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await other.close()


async def test_a_change_by_another_process_is_seen_by_a_long_running_one(soul_settings: Settings) -> None:
    """Every Spark over every anchor: a cached state is checked against the snapshot's revision before it is served."""
    running = await open_service(soul_settings, strict_spark=True)
    other = await open_service(soul_settings, strict_spark=True)
    try:
        await running.recover("k1")
        assert (await running.recover("k1")).source is RecoverySource.CACHE
        changed = await other.set_mode("k1", "challenge")
        assert (await running.recover("k1")).state == changed
        await other.forget("k1")
        gone = await running.recover("k1")  # forgotten elsewhere: never served from this process's cache
        assert gone.source is RecoverySource.NEW and gone.state.mode is DialogueMode.REFLECT
    finally:
        await running.close()
        await other.close()


async def test_the_embedded_spark_sees_a_save_by_another_process(anchor_settings: Settings) -> None:
    """Issue 7.9: the in-process cache over PostgreSQL (and SQLite) never hides another process's save."""
    settings = replace(anchor_settings, persona="kent")
    running = await open_service(settings)
    try:
        await running.recover("k1")
        assert (await running.recover("k1")).source is RecoverySource.CACHE
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import sys; from kgents.cli.app import main; main(sys.argv[1:])",
            *("soul", "mode", "explore", "--soul", "k1"),
            env=kgents_env(settings),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(child.communicate(), timeout=30)
        assert child.returncode == 0, err.decode()
        seen = await running.recover("k1")
        assert seen.state.mode is DialogueMode.EXPLORE and seen.state.revision == 2
    finally:
        await running.close()

"""One suite over both Sparks (Redis, embedded) and both anchors (SQLite, PostgreSQL): recovery, TTL, corruption,
isolation, concurrency and validation behave the same everywhere."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import pytest

from kgents.config import Settings
from kgents.errors import ConfigError, ValidationError
from kgents.soul import DialogueMode, RecoverySource, SoulDataError, SoulService, open_service
from tests.helpers import wait_until


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


async def test_pubsub_is_redis_only_and_says_so(service: SoulService) -> None:
    if service.spark.supports_pubsub:
        assert service.spark.backend == "redis"
        return
    with pytest.raises(ConfigError, match="needs Redis: set KGENTS_REDIS_URL"):
        async for _ in service.watch("k1"):
            pass
    assert await service.announce((await service.recover("k1")).state, None) == 0


async def test_a_change_by_another_process_is_seen_by_a_long_running_one(soul_settings: Settings) -> None:
    """Redis shares the cache; the embedded Spark over SQLite notices the other writer (PRAGMA data_version)."""
    running = await open_service(soul_settings, strict_spark=True)
    other = await open_service(soul_settings, strict_spark=True)
    try:
        await running.recover("k1")
        assert (await running.recover("k1")).source is RecoverySource.CACHE
        await other.set_mode("k1", "challenge")
        seen = await running.recover("k1")
        if soul_settings.redis_url or not soul_settings.postgres_url:
            assert seen.state.mode is DialogueMode.CHALLENGE
        else:  # embedded Spark over PostgreSQL: a per-process cache (known limit); a write still never loses
            await running.set_eigenvector("k1", "joy", 0.1)
            assert (await running.recover("k1", use_cache=False)).state.mode is DialogueMode.CHALLENGE
    finally:
        await running.close()
        await other.close()

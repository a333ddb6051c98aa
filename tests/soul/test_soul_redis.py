"""Redis-only behaviour: pub/sub between processes, isolation of channels, outages (restart, FLUSHALL) that lose
nothing, reconnection of watchers, heartbeats, and an unreachable server named without its password."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest

from kgents.config import Settings
from kgents.errors import BackendUnavailableError
from kgents.soul.model import DialogueMode
from kgents.soul.redis_spark import RedisSpark
from kgents.soul.service import RecoverySource, SoulService
from kgents.soul.session import open_service
from kgents.soul.spark import ModeChange
from tests.helpers import REDIS_URL, wait_until
from tests.soul.conftest import PrivateRedis, free_port


def settings_for(tmp_path: Path, prefix: str, url: str = REDIS_URL, persona: str = "kent") -> Settings:
    return Settings(home=tmp_path / "home", redis_url=url, spark_prefix=prefix, persona=persona)


def redis_of(service: SoulService) -> RedisSpark:
    return cast(RedisSpark, service.spark)


async def listeners_at_least(service: SoulService, soul_id: str, count: int = 1) -> None:
    await wait_until(
        lambda: redis_of(service).listeners(service.persona, soul_id),
        lambda n: n >= count,
        timeout=10,
        what=f"{count} subscriber(s) on soul {soul_id}",
    )


def collect(changes: AsyncIterator[ModeChange], into: list[ModeChange]) -> asyncio.Task[None]:
    async def run() -> None:
        async for change in changes:
            into.append(change)

    return asyncio.create_task(run())


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def child_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGENTS_")}
    env.update(
        KGENTS_HOME=str(settings.home),
        KGENTS_REDIS_URL=cast(str, settings.redis_url),
        KGENTS_SPARK_PREFIX=settings.spark_prefix,
        KGENTS_PERSONA=settings.persona,
    )
    return env


async def kgents(settings: Settings, *args: str) -> asyncio.subprocess.Process:
    """`kgents …` in a separate process, through the real entry point."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; from kgents.cli.app import main; main(sys.argv[1:])",
        *args,
        env=child_env(settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


@pytest.mark.slow
async def test_two_processes_see_each_others_mode_changes(tmp_path: Path, spark_prefix: str) -> None:
    settings = settings_for(tmp_path, spark_prefix)
    service = await open_service(settings, strict_spark=True)
    try:
        await service.recover("k1")
        # another process watches; this one changes the mode
        watcher = await kgents(settings, "soul", "watch", "--soul", "k1", "--count", "1", "--json")
        await listeners_at_least(service, "k1")
        await service.set_mode("k1", "challenge")
        assert watcher.stdout is not None
        line = await asyncio.wait_for(watcher.stdout.readline(), timeout=10)
        seen = json.loads(line)
        assert seen["mode"] == "CHALLENGE" and seen["previous"] == "REFLECT" and seen["soul_id"] == "k1"
        assert seen["instance"] == service.spark.instance_id
        assert await asyncio.wait_for(watcher.wait(), timeout=10) == 0

        # this process watches; another process changes the mode
        got: list[ModeChange] = []
        task = collect(service.watch("k1"), got)
        try:
            await listeners_at_least(service, "k1")
            changer = await kgents(settings, "soul", "mode", "explore", "--soul", "k1")
            _, err = await asyncio.wait_for(changer.communicate(), timeout=20)
            assert changer.returncode == 0, err.decode()
            await wait_until(lambda: _value(got), bool, timeout=10, what="the other process's mode change")
            assert got[0].mode is DialogueMode.EXPLORE and got[0].previous is DialogueMode.CHALLENGE
            assert got[0].instance_id != service.spark.instance_id
        finally:
            await stop(task)
        assert (await service.recover("k1")).state.mode is DialogueMode.EXPLORE
    finally:
        await service.close()


async def _value(items: list[ModeChange]) -> list[ModeChange]:
    return items


async def test_own_messages_and_other_souls_are_not_delivered(tmp_path: Path, spark_prefix: str) -> None:
    settings = settings_for(tmp_path, spark_prefix)
    a, b = await open_service(settings), await open_service(settings)
    other = await open_service(settings_for(tmp_path, spark_prefix, persona="someone"))
    got: list[ModeChange] = []
    theirs: list[ModeChange] = []
    tasks = [collect(a.watch("k1"), got), collect(other.watch("k1"), theirs)]
    try:
        await listeners_at_least(a, "k1")
        await listeners_at_least(other, "k1")
        await a.set_mode("k1", "advise")  # a's own change: not echoed back to a
        await b.set_mode("k2", "explore")  # another soul
        await b.set_mode("k1", "challenge")  # the one a must see
        await wait_until(lambda: _value(got), bool, timeout=10, what="b's change of k1")
        assert [(c.soul_id, c.mode) for c in got] == [("k1", DialogueMode.CHALLENGE)]
        await b.spark.publish(  # a persona's own channel only reaches that persona
            ModeChange("someone", "k1", DialogueMode.EXPLORE, None, 9, b.spark.instance_id, 0)
        )
        await wait_until(lambda: _value(theirs), bool, timeout=10, what="the other persona's change")
        assert [(c.persona, c.mode) for c in theirs] == [("someone", DialogueMode.EXPLORE)]
        assert len(got) == 1
    finally:
        for task in tasks:
            await stop(task)
        for service in (a, b, other):
            await service.close()


@pytest.mark.parametrize("outage", ["restart", "flushall"])
async def test_redis_lost_mid_session_loses_nothing(
    tmp_path: Path, private_redis: PrivateRedis, spark_prefix: str, outage: str
) -> None:
    settings = settings_for(tmp_path, spark_prefix, url=private_redis.url)
    service = await open_service(settings, strict_spark=True)
    listener = await open_service(settings, strict_spark=True)
    await service.set_mode("k1", "challenge")
    got: list[ModeChange] = []
    task = collect(listener.watch("k1"), got)
    try:
        await listeners_at_least(service, "k1")
        if outage == "restart":
            private_redis.stop()
            await service.set_mode("k1", "advise")  # Redis down: the snapshot takes it, the announcement is lost
            during = await service.set_eigenvector("k1", "joy", 0.2, 0.9)
            assert (await service.metrics()).errors > 0
            private_redis.start()  # same port, empty memory, no scripts
            # the watcher reconnects, re-reads the snapshot and reports the change it could not hear
            await wait_until(
                lambda: _value(got), lambda g: any(c.instance_id == "resync" for c in g), timeout=10, what="resync"
            )
            missed = next(c for c in got if c.instance_id == "resync")
            assert missed.mode is DialogueMode.ADVISE and missed.previous is DialogueMode.CHALLENGE
        else:
            during = await service.set_eigenvector("k1", "joy", 0.2, 0.9)
            private_redis.flushall()
        recovered = await service.recover("k1")
        assert recovered.source is RecoverySource.SNAPSHOT and recovered.state == during
        assert recovered.warnings, "a recovery after a flush or restart says so (README)"
        assert recovered.state.mode is (DialogueMode.ADVISE if outage == "restart" else DialogueMode.CHALLENGE)
        await wait_until(  # re-warmed (at once after FLUSHALL; after the breaker's pause after an outage)
            lambda: service.recover("k1"), lambda r: r.source is RecoverySource.CACHE, timeout=5, what="warm cache"
        )
        # the watcher in the other service is back on the channel and hears the next change
        await listeners_at_least(service, "k1")
        await service.set_mode("k1", "explore")
        await wait_until(
            lambda: _value(got), lambda g: any(c.mode is DialogueMode.EXPLORE for c in g), timeout=10, what="explore"
        )
    finally:
        await stop(task)
        await service.close()
        await listener.close()


async def test_heartbeats_count_live_instances(tmp_path: Path, spark_prefix: str) -> None:
    settings = settings_for(tmp_path, spark_prefix)
    a, b = await open_service(settings), await open_service(settings)
    try:
        assert (await a.spark.stats()).connected_instances == 2
        stats = await a.spark.stats()
        assert stats.used_memory_bytes and stats.ops_per_second is not None and stats.connected_clients
    finally:
        await b.close()
    try:
        assert (await a.spark.stats()).connected_instances == 1
    finally:
        await a.close()


async def test_unreachable_redis_is_named_without_its_password(tmp_path: Path, spark_prefix: str) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    settings = settings_for(tmp_path, spark_prefix, url=url)
    with pytest.raises(BackendUnavailableError, match=r"KGENTS_REDIS_URL: Redis at redis://:\*\*\*@127") as caught:
        await open_service(settings, strict_spark=True)
    assert "hunter2" not in str(caught.value)
    # not strict: the soul still opens, from the snapshot, and the metrics say the Spark is down
    service = await open_service(settings)
    try:
        first = await service.set_mode("k1", "advise")
        assert await service.load("k1") == first
        for _ in range(10):  # the breaker: a down Spark is tried about once per pause, not on every call
            await service.recover("k1")
        metrics = await service.metrics()
        assert 1 <= metrics.errors < 10
        assert not metrics.reachable and metrics.level == "CRITICAL"
    finally:
        await service.close()


@pytest.mark.slow
async def test_watch_stops_cleanly_on_ctrl_c(tmp_path: Path, spark_prefix: str) -> None:
    settings = settings_for(tmp_path, spark_prefix)
    service = await open_service(settings, strict_spark=True)
    try:
        await service.recover("k1")
        watcher = await kgents(settings, "soul", "watch", "--soul", "k1")
        await listeners_at_least(service, "k1")
        await service.set_mode("k1", "advise")
        assert watcher.stdout is not None
        line = (await asyncio.wait_for(watcher.stdout.readline(), timeout=10)).decode()
        assert "REFLECT → ADVISE" in line
        watcher.send_signal(signal.SIGINT)
        # about a second on a quiet machine; a loaded CI machine once needed more than 10 s to close the session
        _, err = await asyncio.wait_for(watcher.communicate(), timeout=30)
        assert watcher.returncode == 0 and "watched 1 mode change(s)" in err.decode()
        assert "Traceback" not in err.decode()
    finally:
        await service.close()


async def test_a_trial_call_that_ends_without_a_verdict_gives_the_trial_back(spark_prefix: str) -> None:
    from redis.exceptions import ResponseError

    from kgents.breaker import BreakerState

    spark = RedisSpark(REDIS_URL, spark_prefix, heartbeat=False)
    try:
        spark._breaker.record_failure(0.0)  # open since long ago: the next call is the trial

        async def refused() -> None:
            raise ResponseError("OOM command not allowed")  # the server answers, with an error: no verdict

        async def cancelled() -> None:
            raise asyncio.CancelledError

        with pytest.raises(BackendUnavailableError):
            await spark._call(refused, warn=False)
        assert spark._breaker.state is BreakerState.HALF_OPEN and not spark._breaker.trial_out
        with pytest.raises(asyncio.CancelledError):
            await spark._call(cancelled)
        assert spark._breaker.state is BreakerState.HALF_OPEN and not spark._breaker.trial_out
        assert await spark._call(spark.client.ping) and spark._breaker.state is BreakerState.CLOSED
    finally:
        await spark.close()

"""A reader never sees a state older than the last acknowledged save, whatever Redis does: a failed cache write,
a stalled (SIGSTOP'd) server, a flush. A stalled Redis costs a command about a second, not a minute.

Every fault is staged on a private redis-server (tests/soul/conftest.py), over both anchors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import pytest

from kgents.config import Settings
from kgents.soul.model import DialogueMode
from kgents.soul.service import RecoverySource, SoulService
from kgents.soul.session import open_service, open_soul
from kgents.soul.spark import ModeChange
from tests.helpers import kgents_env, wait_until
from tests.soul.conftest import PrivateRedis

DEADLINE_S = 5.0
"""A whole open + save + read against a stalled Redis (it took about a minute before the fix)."""


@pytest.fixture
def faulty(anchor_settings: Settings, private_redis: PrivateRedis, spark_prefix: str) -> Iterator[Settings]:
    """Settings on each anchor with the Spark on a private Redis; the server is resumed whatever the test did."""
    try:
        yield replace(anchor_settings, redis_url=private_redis.url, spark_prefix=spark_prefix, persona="kent")
    finally:
        private_redis.resume()


@contextlib.asynccontextmanager
async def watching(service: SoulService, soul_id: str) -> AsyncIterator[list[ModeChange]]:
    """Collect the mode changes `service` hears about `soul_id` while the block runs."""
    got: list[ModeChange] = []

    async def run() -> None:
        async for change in service.watch(soul_id):
            got.append(change)

    task = asyncio.create_task(run())
    try:
        await wait_until(
            lambda: service.spark.listeners(service.persona, soul_id),  # type: ignore[attr-defined]
            lambda n: n >= 1,
            timeout=10,
            what="a subscriber",
        )
        yield got
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def heard(got: list[ModeChange], mode: DialogueMode) -> None:
    async def probe() -> list[ModeChange]:
        return got

    await wait_until(probe, lambda g: any(c.mode is mode for c in g), timeout=10, what=f"the change to {mode}")


async def test_a_failed_cache_write_never_serves_the_old_state(faulty: Settings, private_redis: PrivateRedis) -> None:
    writer = await open_service(faulty, strict_spark=True)
    reader = await open_service(faulty, strict_spark=True)
    server = private_redis.client()
    try:
        await writer.set_mode("k1", "advise")
        assert (await reader.recover("k1")).source is RecoverySource.CACHE
        async with watching(reader, "k1") as got:
            server.config_set("maxmemory", 1)  # every write is refused (OOM); reads and PUBLISH still work
            try:
                changed = await writer.set_mode("k1", "challenge")
                seen = await reader.recover("k1")
                assert seen.state == changed, "a reader got the state from before the last save"
                assert seen.source is RecoverySource.SNAPSHOT and "revision" in seen.warnings[0]
                await heard(got, DialogueMode.CHALLENGE)  # announced although the cache write failed
            finally:
                server.config_set("maxmemory", 0)
        await wait_until(  # the cache heals: the next read re-warms it
            lambda: reader.recover("k1"), lambda r: r.source is RecoverySource.CACHE, timeout=5, what="warm cache"
        )
        assert (await reader.recover("k1")).state == changed
    finally:
        server.close()
        await writer.close()
        await reader.close()


async def test_a_save_while_redis_is_stalled_is_what_every_reader_gets(
    faulty: Settings, private_redis: PrivateRedis
) -> None:
    writer = await open_service(faulty, strict_spark=True)
    reader = await open_service(faulty, strict_spark=True)
    try:
        await writer.set_mode("k1", "advise")
        assert (await reader.recover("k1")).source is RecoverySource.CACHE
        async with watching(reader, "k1") as got:
            private_redis.pause()
            changed = await asyncio.wait_for(writer.set_mode("k1", "explore"), DEADLINE_S)
            assert (await asyncio.wait_for(writer.recover("k1"), DEADLINE_S)).state == changed
            private_redis.resume()
            assert (await reader.recover("k1")).state == changed
            await heard(got, DialogueMode.EXPLORE)  # announced once the server answers again
    finally:
        private_redis.resume()
        await writer.close()
        await reader.close()


async def test_a_stalled_redis_costs_a_command_a_second_and_one_warning(
    faulty: Settings, private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    async with await open_soul(faulty, "k1") as session:
        before = await session.service.set_mode("k1", "advise")
    private_redis.pause()
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="kgents.soul"):
        async with asyncio.timeout(DEADLINE_S):
            async with await open_soul(faulty, "k1") as session:
                assert session.state == before and session.recovery.source is RecoverySource.SNAPSHOT
                saved = await session.service.set_eigenvector("k1", "joy", 0.3)
                assert (await session.service.recover("k1")).state == saved
                assert await session.service.cache_ttl("k1") is None
                assert not (await session.service.metrics()).reachable
    elapsed = time.monotonic() - start
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "Redis at redis://127.0.0.1" in warnings[0], warnings
    assert elapsed < DEADLINE_S


async def test_soul_show_with_a_stalled_redis_warns_once_and_exits_0(
    faulty: Settings, private_redis: PrivateRedis
) -> None:
    async with await open_soul(faulty, "kent") as session:
        await session.service.set_mode("kent", "challenge")
    private_redis.pause()
    env = kgents_env(faulty) | {"KGENTS_REDIS_URL": private_redis.url, "KGENTS_SPARK_PREFIX": faulty.spark_prefix}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; from kgents.cli.app import main; main(sys.argv[1:])",
        "soul",
        "show",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(child.communicate(), timeout=20)  # was about a minute before the fix
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    assert child.returncode == 0, err.decode()
    lines = err.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kgents: warning: spark: Redis at redis://127.0.0.1"), lines
    assert "CHALLENGE" in out.decode() and "from snapshot" in out.decode()

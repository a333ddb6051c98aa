"""A scrape costs what it reads, on both anchors: `/metrics` and `/v1/health` (the served home's health) scan neither
store in full, open no store of their own and write nothing; they serve the measuring relay's last figure."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kgents.config import Settings
from kgents.garden.postgres_store import PostgresGardenStore
from kgents.garden.sqlite_store import SqliteGardenStore
from kgents.health.model import Level
from kgents.health.prometheus import render_prometheus
from kgents.server.served_home import ServedHome
from kgents.synapse.coherency_buckets import measure_changed
from tests.helpers import REDIS_URL, unique_name

WRITTEN = (
    "SELECT (SELECT beats FROM health_probe), (SELECT count(*) FROM drift_history),"
    " (SELECT count(*) FROM synapse_heartbeat), (SELECT count(*) FROM coherency_bucket),"
    " (SELECT measured_at FROM synapse_coherency)"
)


@pytest.fixture
async def served(anchor_settings: Settings) -> AsyncIterator[ServedHome]:
    opened = await ServedHome.open(anchor_settings)
    try:
        yield opened
    finally:
        await opened.close()


async def written(served: ServedHome) -> tuple[Any, ...]:
    queue: Any = served.stack.queue
    if queue.backend == "postgres":
        return tuple(await queue.pool.fetchrow(WRITTEN))
    row = await queue.db.run(lambda: queue.db.conn.execute(WRITTEN).fetchone())
    changes = await queue.db.run(lambda: queue.db.conn.total_changes)
    return (*row, changes)


class Counted:
    """Counts calls of a real method (the call still goes through)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: dict[str, int] = {}
        self.monkeypatch = monkeypatch

    def wrap(self, owner: Any, name: str) -> None:
        inner = getattr(owner, name)

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return await inner(*args, **kwargs)

        self.monkeypatch.setattr(owner, name, counted)


async def test_a_scrape_scans_nothing_in_full_and_writes_nothing(
    served: ServedHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = await served.memory("kent")
    for i in range(5):
        await memory.remember(f"I like scrapes that cost little {i}")
    state = served.stack.state
    measured = await measure_changed(served.stack.queue, served.stack.index, state.active)
    await served.stack.queue.buckets().publish(measured.report.to_dict(), "relay-under-test")
    counted = Counted(monkeypatch)
    counted.wrap(served.stack.index, "versions")
    counted.wrap(served.stack.queue, "versions")
    counted.wrap(SqliteGardenStore, "open")  # every way to a new store ends in one of these
    counted.wrap(PostgresGardenStore, "open")
    before = await written(served)
    health = await served.health()
    text = render_prometheus(await served.health()).decode()
    assert await written(served) == before, "a read wrote to the anchor"
    assert counted.calls == {}, counted.calls
    resonance = health.part("resonance")
    assert resonance is not None and resonance.level != Level.UNKNOWN
    assert resonance.figures["matched"] == 5 and resonance.figures["measured_by"] == "relay relay-under-test"
    assert resonance.figures["age_s"] is not None and "kgents_index_coherency_ratio{" in text
    durability = health.part("durability")
    assert durability is not None and durability.level not in (Level.CRITICAL, Level.UNKNOWN)


async def test_without_a_figure_coherency_is_unknown_not_measured(
    served: ServedHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    counted = Counted(monkeypatch)
    counted.wrap(served.stack.index, "versions")
    health = await served.health()
    resonance = health.part("resonance")
    assert resonance is not None and resonance.level == Level.UNKNOWN and "no relay has measured" in resonance.reason
    assert counted.calls == {}


async def test_with_redis_the_reflex_part_reads_the_servers_own_spark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kgents.soul.redis_spark import RedisSpark

    settings = Settings(home=tmp_path / "home", redis_url=REDIS_URL, spark_prefix=unique_name("served"))
    opened = await ServedHome.open(settings)
    try:
        counted = Counted(monkeypatch)
        counted.wrap(RedisSpark, "open")
        reflex = (await opened.health()).part("reflex")
        assert reflex is not None and reflex.configured and reflex.figures["latency_ms"] is not None, reflex
        assert reflex.level != Level.CRITICAL and reflex.backend == "Redis"
        assert counted.calls == {}, "a scrape opened a Redis connection of its own"
    finally:
        await opened.close()

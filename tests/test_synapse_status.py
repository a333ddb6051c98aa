"""Issue 7.4, 7.6 and 7.15: a search says when the index could not catch up; `synapse status` shows fresh figures
(the in-process drains' work too), forgets relays long dead, clears errors that are over, and shows one persona
no other persona's entry ids."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from kgents.clock import utcnow
from kgents.config import Settings
from kgents.garden.service import PersonaGarden
from kgents.garden.store import open_store
from kgents.synapse.metrics import HEARTBEAT_PURGE_S, collect_metrics
from kgents.synapse.queue import queue_on
from kgents.synapse.records import Heartbeat
from kgents.synapse.relay import anchor_recovered
from kgents.synapse.relay_beats import measure_pause
from kgents.synapse.runtime import open_synapse
from tests.helpers import CliHarness, kgents_env, wait_until, wait_until_sync
from tests.synapse_env import Env, open_env


@pytest.fixture
def cli(anchor_settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> CliHarness:
    return CliHarness(anchor_settings, capsys, monkeypatch)


@pytest.fixture
async def env(anchor_settings: Settings) -> AsyncIterator[Env]:
    async with open_env(anchor_settings, "qdrant") as opened:
        yield opened


async def _plant(settings: Settings, persona: str, count: int) -> None:
    store = await open_store(settings)
    try:
        garden = PersonaGarden(store, persona)
        await garden.plant_many([garden.new_entry(f"{persona} memory {i}", "PATTERN") for i in range(count)])
    finally:
        await store.close()


# -- 7.4: a search that could not catch up says so -------------------------------------------------------------


async def test_drain_until_empty_needs_no_caller_loop(anchor_settings: Settings) -> None:
    await _plant(anchor_settings, "kent", 300)
    synapse = await open_synapse(anchor_settings)
    try:
        late = await synapse.drain(timeout_s=0.0)
        assert (late.completed, late.pending, late.caught_up) == (0, 300, False)
        done = await synapse.catch_up(timeout_s=60)
        assert (done.completed, done.pending, done.caught_up) == (300, 0, True)
        assert (await synapse.coherency()).coherency_with_truth == 1.0
    finally:
        await synapse.close()


def test_search_that_could_not_catch_up_warns_and_reports_pending(cli: CliHarness) -> None:
    asyncio.run(_plant(cli_settings(), "kent", 40))
    code, out, err = cli("garden", "search", "memory", "--wait", "0", "--json")
    assert code == 0
    assert json.loads(out)["pending"] == 40
    assert err.startswith("warning: the index is 40 events behind") and len(err.strip().splitlines()) == 1
    code, out, err = cli("garden", "search", "memory", "--json")
    assert code == 0 and err == ""
    answer = json.loads(out)
    assert answer["pending"] == 0 and answer["hits"]


async def _lose_every_point(settings: Settings) -> None:
    synapse = await open_synapse(settings)
    try:
        await synapse.catch_up(60)
        collection = synapse.state.active.collection
        await synapse.index.delete(collection, list(await synapse.index.versions(collection)))
    finally:
        await synapse.close()


def cli_settings() -> Settings:
    return Settings.from_env()  # the CLI harness put this test's settings in the environment


# -- 7.6: fresh, honest status --------------------------------------------------------------------------------


def test_relay_measure_pause_and_recovery_rules() -> None:
    assert measure_pause(2.0, 0.01) == 2.0
    assert measure_pause(2.0, 1.0) == 10.0, "measuring never takes more than a tenth of the relay's time"
    assert anchor_recovered("anchor: ConnectionError") is None
    assert anchor_recovered("index: down") == "index: down"
    assert anchor_recovered(None) is None


async def test_expired_heartbeats_are_not_alive_and_long_dead_ones_are_purged(env: Env) -> None:
    now = utcnow()
    for relay_id, age in (("killed-long-ago", HEARTBEAT_PURGE_S + 60), ("just-expired", 5.0)):
        beat = now - timedelta(seconds=age)
        await env.queue.beat(Heartbeat(relay_id, 1, "host", beat, beat, 0.2, {"processed": 7}))
    metrics = await collect_metrics(env.queue)
    assert metrics.relays_alive == 0
    assert [(r.relay_id, r.alive) for r in metrics.relays] == [("just-expired", False)]
    assert [h.relay_id for h in await env.queue.heartbeats()] == ["just-expired"], "the -9 relay's row is gone"


async def test_last_error_clears_once_the_index_is_back(env: Env) -> None:
    relay = env.start()
    env.index.down = True
    await env.garden().plant("written while the index is down", "VALUE")

    async def last_error() -> object:
        return next((h.stats.get("last_error") for h in await env.queue.heartbeats()), "no heartbeat")

    await wait_until(last_error, lambda e: isinstance(e, str) and e.startswith("index:"), what="the outage")
    env.index.down = False
    await wait_until(last_error, lambda e: e is None, what="the error cleared", timeout=15)
    assert relay.stats.last_error is None


async def test_in_process_drains_count_in_the_status(anchor_settings: Settings) -> None:
    await _plant(anchor_settings, "kent", 12)
    synapse = await open_synapse(anchor_settings)
    try:
        assert (await synapse.catch_up(timeout_s=60)).completed == 12
    finally:
        await synapse.close()  # the process's drain is over: only the anchor's totals remember it
    store = await open_store(anchor_settings)
    try:
        metrics = await collect_metrics(queue_on(store.anchor))
    finally:
        await store.close()
    assert metrics.processed == 12 and metrics.relays_alive == 0
    assert metrics.latency_p50_ms is not None and metrics.queue_depth == 0


def test_status_shows_a_fresh_figure_of_an_index_only_the_relay_can_open(anchor_settings: Settings) -> None:
    settings = anchor_settings.with_persona("kent")
    asyncio.run(_plant(settings, "kent", 3))
    kgents = str(Path(sys.executable).parent / "kgents")
    env = kgents_env(settings)
    relay = subprocess.Popen([kgents, "synapse", "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def status() -> dict[str, object]:
        done = subprocess.run(
            [kgents, "synapse", "status", "--json"], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        return dict(json.loads(done.stdout)) if done.stdout else {"error": done.stderr}

    def matched(want: int) -> Callable[[dict[str, object]], bool]:
        def check(data: dict[str, object]) -> bool:
            report = data.get("coherency")
            return isinstance(report, dict) and report["matched"] == want and report["coherency_with_truth"] == 1.0

        return check

    try:
        assert relay.stdout is not None
        started = relay.stdout.readline().decode()  # the relay owns the index before any status looks
        assert "relaying" in started, relay.stderr.read().decode() if relay.stderr else started
        wait_until_sync(status, matched(3), timeout=30, what="the relay's first measurement")
        asyncio.run(_plant(settings, "kent", 2))
        data = wait_until_sync(status, matched(5), timeout=8, what="a figure newer than the plant")
        report = data["coherency"]
        assert isinstance(report, dict) and report["age_s"] < 6 and report["samples"] == {}
        assert data["status"] == "OK"
    finally:
        relay.terminate()
        relay.wait(30)


# -- 7.15: one persona never sees another's entry ids ---------------------------------------------------------


def test_status_samples_only_the_asking_personas_entries(cli: CliHarness) -> None:
    settings = cli_settings()
    asyncio.run(_plant(settings, "kent", 1))
    asyncio.run(_plant(settings, "ada", 6))
    asyncio.run(_lose_every_point(settings))  # indexed, then lost: what a drain before measuring cannot mend
    status = json.loads(cli("synapse", "status", "--json", "--full")[1])
    assert status["coherency"]["missing"] == 7, "the counts are operator-wide"
    assert status["coherency"]["full"] is True

    async def ids_of(persona: str) -> set[str]:
        store = await open_store(settings)
        try:
            return {str(e.id) for e in await PersonaGarden(store, persona).query()}
        finally:
            await store.close()

    kent = asyncio.run(ids_of("kent"))
    assert set(status["coherency"]["samples"]["missing"]) == kent
    _, out, _ = cli("synapse", "status")
    assert "all personas" in out

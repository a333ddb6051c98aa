"""Every part down in turn gives the right level, reason and exit code within the probe timeout; a healthy
triad is healthy on both anchors; collection never hangs and never raises."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kgents.cli.exit_codes import ExitCode, exit_code_for_level
from kgents.config import Settings
from kgents.health.collect import collect_health, default_probes
from kgents.health.levels import Thresholds
from kgents.health.model import Level, PartHealth
from tests.health.support import RELAXED, drain, plant, relaxed
from tests.helpers import PG_URL, CliHarness
from tests.soul.conftest import PrivateRedis, free_port

TIMEOUT_S = 3.0
GRACE_S = 2.0
"""Collection returns within the probe timeout plus this (cancellation grace and a busy machine)."""


async def timed_collect(settings: Settings, thresholds: Thresholds = RELAXED, **kw: object):  # type: ignore[no-untyped-def]
    began = time.monotonic()
    health = await collect_health(settings, thresholds, **kw)  # type: ignore[arg-type]
    took = time.monotonic() - began
    assert took < thresholds.probe_timeout_s + GRACE_S, f"collection took {took:.2f} s"
    return health


def part(health: object, name: str) -> PartHealth:
    found = health.part(name)  # type: ignore[attr-defined]
    assert found is not None
    return found  # type: ignore[no-any-return]


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_a_healthy_triad_on_both_anchors(anchor_settings: Settings) -> None:
    await plant(anchor_settings)
    await drain(anchor_settings)
    health = await timed_collect(anchor_settings, relaxed(probe_timeout_s=10.0), record="status")
    assert health.level in (Level.THRIVING, Level.HEALTHY), health.to_dict()
    assert exit_code_for_level(health.level) is ExitCode.OK
    resonance = part(health, "resonance")
    assert resonance.figures["coherency_with_truth"] == 1.0 and resonance.figures["matched"] == 3
    assert part(health, "durability").figures["pending_events"] == 0
    reflex = part(health, "reflex")
    assert reflex.level is Level.HEALTHY and not reflex.configured, "no Redis on the default is not a fault"


async def test_embedded_default_drains_before_measuring(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    await plant(settings)
    health = await timed_collect(settings, relaxed(probe_timeout_s=10.0))
    assert part(health, "resonance").figures["matched"] == 3, "pending events are applied first, as search does"


async def test_redis_stopped_is_critical_reflex(tmp_path: Path, private_redis: PrivateRedis) -> None:
    settings = Settings(home=tmp_path / "home", redis_url=private_redis.url)
    await plant(settings)
    up = await timed_collect(settings, relaxed(probe_timeout_s=TIMEOUT_S))
    assert part(up, "reflex").level in (Level.THRIVING, Level.HEALTHY) and part(up, "reflex").configured
    private_redis.stop()
    down = await timed_collect(settings, relaxed(probe_timeout_s=TIMEOUT_S))
    reflex = part(down, "reflex")
    assert reflex.level is Level.CRITICAL and reflex.error
    assert reflex.reason.startswith("Redis unreachable:"), reflex.reason
    assert down.level is Level.CRITICAL and down.verdict.reason == reflex.reason
    assert exit_code_for_level(down.level) is ExitCode.CRITICAL
    assert part(down, "durability").level is not Level.CRITICAL, "one part down leaves the others measured"


def test_redis_stopped_cli_exit_code(
    tmp_path: Path, private_redis: PrivateRedis, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(home=tmp_path / "home")
    cli = CliHarness(settings, capsys, monkeypatch)
    monkeypatch.setenv("KGENTS_REDIS_URL", private_redis.url)
    code, out, _ = cli("status", "--triad", "--timeout", str(TIMEOUT_S))
    assert code in (0, 1), out  # (a busy machine may call commits slow; never critical)
    private_redis.stop()
    code, out, _ = cli("status", "--triad", "--timeout", str(TIMEOUT_S))
    assert code == ExitCode.CRITICAL, out
    assert "Reflex (Redis):" in out and "Overall: CRITICAL (Redis unreachable:" in out


def closed_port() -> int:
    port = free_port()  # bound and released: nothing listens there
    return port


async def test_closed_postgres_port_is_critical_durability(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(home=tmp_path / "home", postgres_url=f"postgresql://127.0.0.1:{closed_port()}/test")
    health = await timed_collect(settings, relaxed(probe_timeout_s=TIMEOUT_S))
    durability = part(health, "durability")
    assert durability.level is Level.CRITICAL and durability.reason.startswith("PostgreSQL unreachable:")
    assert health.level is Level.CRITICAL and health.verdict.reason.startswith("PostgreSQL unreachable:")
    assert part(health, "reflex").level is Level.HEALTHY
    assert exit_code_for_level(health.level) is ExitCode.CRITICAL


def test_closed_postgres_port_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(home=tmp_path / "home", postgres_url=f"postgresql://127.0.0.1:{closed_port()}/test")
    cli = CliHarness(settings, capsys, monkeypatch)
    began = time.monotonic()
    code, out, err = cli("status", "--timeout", str(TIMEOUT_S))
    assert time.monotonic() - began < TIMEOUT_S + GRACE_S
    assert code == ExitCode.CRITICAL and out.startswith("triad:CRITICAL  PostgreSQL unreachable:"), (out, err)
    assert "Traceback" not in err


async def test_relay_not_running_is_degraded_synapse(tmp_path: Path, pg_schema: str) -> None:
    settings = Settings(home=tmp_path / "home", postgres_url=PG_URL, postgres_schema=pg_schema)
    await plant(settings, tuple(f"entry number {i}" for i in range(10)))
    await drain(settings)
    await plant(settings, ("planted while no relay runs",))
    health = await timed_collect(settings, relaxed(probe_timeout_s=TIMEOUT_S, relay_grace_s=0.0))
    synapse = part(health, "synapse")
    assert synapse.level is Level.DEGRADED, synapse
    assert synapse.reason.startswith("Synapse relay not running: 1 events pending"), synapse.reason
    assert part(health, "resonance").figures["missing"] == 1, "the probe does not drain where a relay is expected"
    assert health.level is Level.DEGRADED and exit_code_for_level(health.level) is ExitCode.WARNING


async def test_index_drift_injected_through_the_real_index(tmp_path: Path) -> None:
    from kgents.synapse.runtime import open_synapse

    settings = Settings(home=tmp_path / "home")
    ids = await plant(settings)
    await drain(settings)
    synapse = await open_synapse(settings)
    try:
        await synapse.index.delete(synapse.state.active.collection, [ids[0]])
    finally:
        await synapse.close()
    health = await timed_collect(settings, relaxed(probe_timeout_s=10.0))
    resonance = part(health, "resonance")
    assert resonance.level is Level.STRAINED
    assert resonance.reason == "Qdrant Edge drift affecting search quality: 33 % of entries stale (1 missing)"
    assert health.level is Level.STRAINED and health.verdict.reason == resonance.reason
    assert exit_code_for_level(health.level) is ExitCode.WARNING


async def test_a_stalled_probe_is_critical_within_the_timeout(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")

    async def stalled(settings: Settings, t: Thresholds) -> PartHealth:
        await asyncio.sleep(60)
        raise AssertionError("never reached")

    probes = {**default_probes(), "reflex": stalled}
    health = await timed_collect(settings, relaxed(probe_timeout_s=TIMEOUT_S), probes=probes)
    reflex = part(health, "reflex")
    assert reflex.level is Level.CRITICAL and reflex.reason == f"reflex probe timed out after {TIMEOUT_S:g} s"
    assert part(health, "durability").level is not Level.CRITICAL, "one slow part does not delay the others"
    assert exit_code_for_level(health.level) is ExitCode.CRITICAL


async def test_a_stalled_redis_server_is_critical_within_the_timeout(tmp_path: Path) -> None:
    """A server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        url = f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
        settings = Settings(home=tmp_path / "home", redis_url=url)
        health = await timed_collect(settings, relaxed(probe_timeout_s=TIMEOUT_S))
        reflex = part(health, "reflex")
        assert reflex.level is Level.CRITICAL, reflex
    finally:
        listener.close()


async def test_a_raising_probe_never_escapes(tmp_path: Path) -> None:
    async def broken(settings: Settings, t: Thresholds) -> PartHealth:
        raise RuntimeError("postgresql://kent:s3cret@db/x exploded")

    health = await timed_collect(Settings(home=tmp_path / "home"), probes={"synapse": broken})
    synapse = part(health, "synapse")
    assert synapse.level is Level.CRITICAL and "s3cret" not in synapse.reason and "***" in synapse.reason


async def test_an_index_owned_by_a_running_relay_reads_the_relays_figure(tmp_path: Path) -> None:
    from kgents.synapse.relay import RelayConfig
    from kgents.synapse.runtime import open_synapse
    from tests.helpers import wait_until

    settings = Settings(home=tmp_path / "home")
    await plant(settings)
    synapse = await open_synapse(settings)  # holds the embedded index, as `kgents synapse run` does
    relay = synapse.relay(
        RelayConfig(poll_interval_s=0.05, idle_poll_s=0.02, heartbeat_interval_s=0.1, coherency_interval_s=0.1)
    )
    running = asyncio.create_task(relay.run())
    try:

        async def collected() -> object:
            return await timed_collect(settings, relaxed(probe_timeout_s=TIMEOUT_S))

        health = await wait_until(
            collected,
            lambda h: part(h, "resonance").figures.get("matched") == 3 and part(h, "synapse").figures["relays_alive"],
            timeout=20,
            what="the relay's measurement and heartbeat (it publishes its first figure before its first beat)",
        )
        resonance = part(health, "resonance")
        assert resonance.level is Level.THRIVING and "as measured by the relay that owns the index" in resonance.reason
        assert resonance.figures["search_ms"] is None and resonance.figures["index_state"] == "owned by another process"
        assert part(health, "synapse").figures["relays_alive"] == 1
    finally:
        relay.stop()
        await running
        await synapse.close()


def test_status_watch_refreshes_then_exits_with_the_last_level(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = CliHarness(Settings(home=tmp_path / "home"), capsys, monkeypatch)
    code, out, err = cli("status", "--watch", "--count", "2", "--interval", "0.5", "--timeout", "10")
    assert code in (0, 1), err
    assert "Database Triad Health:" in out and "Overall:" in out

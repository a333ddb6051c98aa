"""Levels and reasons at each threshold boundary (pure functions), the worst-wins verdict, and the one exit-code
mapping every status command uses."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from kgents.cli.exit_codes import ExitCode, exit_code_for_level
from kgents.health.collect import scrub
from kgents.health.levels import (
    Thresholds,
    durability_verdict,
    reflex_verdict,
    resonance_verdict,
    synapse_verdict,
)
from kgents.health.model import Level, PartHealth, TriadHealth, overall, worst

T = Thresholds()


@pytest.mark.parametrize(
    ("commit_ms", "pool", "level"),
    [
        (19.9, 0.51, Level.THRIVING),
        (20.0, 0.51, Level.HEALTHY),  # latency bound is exclusive
        (19.9, 0.5, Level.HEALTHY),  # so is the pool bound
        (99.9, 0.21, Level.HEALTHY),
        (100.0, 0.9, Level.STRAINED),
        (1.0, 0.2, Level.STRAINED),
        (1.0, 0.11, Level.STRAINED),
        (1.0, 0.1, Level.DEGRADED),
        (500.0, None, Level.DEGRADED),
        (5.0, None, Level.THRIVING),  # SQLite has no pool: unknown never counts against it
    ],
)
def test_durability_levels_at_each_boundary(commit_ms: float, pool: float | None, level: Level) -> None:
    assert durability_verdict(commit_ms, pool, T).level is level


def test_durability_reason_names_the_cause() -> None:
    assert "commits slow: 150.0 ms" in durability_verdict(150.0, 0.9).reason
    assert "10 % of connections free" in durability_verdict(1.0, 0.1).reason


@pytest.mark.parametrize(
    ("coherency", "search_ms", "level"),
    [
        (0.91, 49.9, Level.THRIVING),
        (0.9, 10.0, Level.HEALTHY),
        (0.95, 50.0, Level.HEALTHY),
        (0.71, 199.0, Level.HEALTHY),
        (0.7, 10.0, Level.STRAINED),
        (0.95, 200.0, Level.STRAINED),
        (0.51, 10.0, Level.STRAINED),
        (0.5, 10.0, Level.DEGRADED),
        (0.95, 1000.0, Level.DEGRADED),
        (0.21, 10.0, Level.DEGRADED),
        (0.2, 10.0, Level.CRITICAL),
        (1.0, None, Level.THRIVING),
        (None, 1.0, Level.UNKNOWN),
    ],
)
def test_resonance_levels_at_each_boundary(coherency: float | None, search_ms: float | None, level: Level) -> None:
    assert resonance_verdict(coherency, search_ms, "Qdrant", {}, T).level is level


def test_resonance_reason_is_the_drift_in_words() -> None:
    verdict = resonance_verdict(2 / 3, 5.0, "Qdrant", {"matched": 2, "missing": 1})
    assert verdict.level is Level.STRAINED
    assert verdict.reason == "Qdrant drift affecting search quality: 33 % of entries stale (1 missing)"
    assert "search slow: 250.0 ms" in resonance_verdict(1.0, 250.0, "Qdrant").reason


@pytest.mark.parametrize(
    ("rate", "pressure", "lookups", "level"),
    [
        (0.91, 0.69, 100, Level.THRIVING),
        (0.9, 0.1, 100, Level.HEALTHY),
        (0.95, 0.7, 100, Level.HEALTHY),
        (0.7, 0.1, 100, Level.STRAINED),
        (0.95, 0.9, 100, Level.STRAINED),
        (0.5, 0.1, 100, Level.DEGRADED),
        (0.95, 0.95, 100, Level.DEGRADED),
        (0.1, None, 19, Level.THRIVING),  # too few lookups to judge
        (0.1, None, 20, Level.DEGRADED),
    ],
)
def test_reflex_levels_at_each_boundary(rate: float, pressure: float | None, lookups: int, level: Level) -> None:
    assert reflex_verdict(rate, pressure, lookups, T).level is level


def _stack(**kw: object) -> Level:
    args: dict[str, object] = dict(
        pending=0,
        oldest_pending_s=None,
        lag_p95_ms=None,
        dead_letters=0,
        circuit="CLOSED",
        relays_alive=1,
        relay_expected=True,
    )
    args.update(kw)
    return synapse_verdict(**args).level  # type: ignore[arg-type]


def test_synapse_levels_at_each_boundary() -> None:
    assert _stack() is Level.THRIVING
    assert _stack(pending=1, oldest_pending_s=4.9) is Level.THRIVING
    assert _stack(pending=1, oldest_pending_s=5.0) is Level.HEALTHY
    assert _stack(pending=1, oldest_pending_s=30.0) is Level.STRAINED
    assert _stack(pending=1, oldest_pending_s=120.0) is Level.DEGRADED
    assert _stack(pending=1, oldest_pending_s=600.0) is Level.CRITICAL
    assert _stack(pending=0, oldest_pending_s=900.0) is Level.THRIVING  # no backlog: no age
    assert _stack(lag_p95_ms=999.0) is Level.THRIVING
    assert _stack(lag_p95_ms=1000.0) is Level.HEALTHY
    assert _stack(lag_p95_ms=30_000.0) is Level.DEGRADED
    assert _stack(dead_letters=1) is Level.STRAINED
    assert _stack(circuit="HALF_OPEN") is Level.DEGRADED
    assert _stack(circuit="OPEN") is Level.CRITICAL
    # a backlog with no relay where one is expected: DEGRADED once past the grace
    assert _stack(pending=3, oldest_pending_s=10.0, relays_alive=0) is Level.HEALTHY
    assert _stack(pending=3, oldest_pending_s=10.1, relays_alive=0) is Level.DEGRADED
    assert _stack(pending=3, oldest_pending_s=900.0, relays_alive=0, relay_expected=False) is Level.THRIVING
    assert _stack(lag_p95_ms=60_000.0, relay_expected=False) is Level.THRIVING, "in-process: lag is by design"
    assert _stack(dead_letters=1, relay_expected=False) is Level.STRAINED


def test_synapse_reason_prefers_the_missing_relay() -> None:
    verdict = synapse_verdict(
        pending=3,
        oldest_pending_s=130.0,
        lag_p95_ms=None,
        dead_letters=0,
        circuit="CLOSED",
        relays_alive=0,
        relay_expected=True,
    )
    assert verdict.level is Level.DEGRADED and verdict.reason.startswith("Synapse relay not running: 3 events pending")


def _part(name: str, level: Level, reason: str = "r") -> PartHealth:
    return PartHealth(name, level, reason, "b")


def test_overall_is_the_worst_part_with_its_reason() -> None:
    parts = [
        _part("durability", Level.THRIVING),
        _part("resonance", Level.STRAINED, "Qdrant drift affecting search quality: 33 % of entries stale"),
        _part("reflex", Level.HEALTHY),
        _part("synapse", Level.THRIVING),
    ]
    verdict = overall(parts)
    assert verdict.level is Level.STRAINED
    assert verdict.reason == "Qdrant drift affecting search quality: 33 % of entries stale"
    assert overall([_part("durability", Level.THRIVING)]).reason == "every part thriving"
    assert overall([]).level is Level.UNKNOWN
    assert worst([Level.DEGRADED, Level.UNKNOWN]) is Level.UNKNOWN
    assert worst([Level.UNKNOWN, Level.CRITICAL]) is Level.CRITICAL
    both = overall([_part("synapse", Level.CRITICAL, "b"), _part("durability", Level.CRITICAL, "a")])
    assert both.reason == "a; b", "ties are explained in part order"


def test_health_round_trips_through_its_json() -> None:
    health = TriadHealth((_part("durability", Level.DEGRADED),), datetime(2026, 1, 1, tzinfo=UTC), 12.0)
    again = TriadHealth.from_dict(health.to_dict())
    assert again.level is Level.DEGRADED and again.measured_at == health.measured_at


@pytest.mark.parametrize(
    ("level", "code"),
    [
        (Level.THRIVING, ExitCode.OK),
        (Level.HEALTHY, ExitCode.OK),
        (Level.STRAINED, ExitCode.WARNING),
        (Level.DEGRADED, ExitCode.WARNING),
        (Level.CRITICAL, ExitCode.CRITICAL),
        (Level.UNKNOWN, ExitCode.UNKNOWN),
        ("critical", ExitCode.CRITICAL),
        ("nonsense", ExitCode.UNKNOWN),
    ],
)
def test_one_exit_code_mapping(level: Level | str, code: ExitCode) -> None:
    assert exit_code_for_level(level) is code


def test_scrub_removes_url_passwords() -> None:
    text = "cannot reach postgresql://kent:s3cret@db:5432/x and redis://:hunter2@127.0.0.1:6379/0"
    assert scrub(text) == "cannot reach postgresql://kent:***@db:5432/x and redis://:***@127.0.0.1:6379/0"


def test_ready_follows_the_anchor_only() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert TriadHealth((_part("durability", Level.STRAINED), _part("reflex", Level.CRITICAL)), now).ready
    assert not TriadHealth((_part("durability", Level.CRITICAL),), now).ready
    assert not TriadHealth((_part("reflex", Level.HEALTHY),), now).ready


def test_an_embedded_backlog_is_not_called_keeping_up() -> None:
    """No relay on the embedded default: the backlog waits for the next command by design (not judged), and the
    reason says so instead of "keeping up" beside a lag of minutes."""
    verdict = synapse_verdict(
        pending=2,
        oldest_pending_s=100.0,
        lag_p95_ms=100_049.7,
        dead_letters=0,
        circuit="CLOSED",
        relays_alive=0,
        relay_expected=False,
    )
    assert verdict.level is Level.THRIVING
    assert "keeping up" not in verdict.reason and "2 events wait for the next command" in verdict.reason


def test_a_relay_running_on_the_embedded_default_is_judged() -> None:
    from kgents.config import Settings
    from kgents.health.probes import relay_expected

    embedded = Settings(home=Path("/nonexistent-kgents-home"))
    assert not relay_expected(embedded, relays_alive=0)
    assert relay_expected(embedded, relays_alive=1), "a server of the home relays: its lag and backlog count"
    assert relay_expected(Settings(home=embedded.home, postgres_url="postgresql://127.0.0.1:5432/test"), 0)

"""SoulState: strict JSON round trip, precise rejections, and the pure reflex thresholds."""

from __future__ import annotations

import json
import math

import pytest

from kgents.axes import AXES
from kgents.config import Settings
from kgents.errors import ConfigError, ValidationError
from kgents.soul.metrics import OpTimer, hit_rate, memory_pressure, percentile, reflex_level, reflex_metrics
from kgents.soul.model import DialogueMode, Eigenvector, SoulDataError, SoulState
from kgents.soul.spark import ModeChange, SparkStats


def test_default_soul_has_the_six_axes_with_their_values() -> None:
    state = SoulState(soul_id="k1", persona="kent")
    assert state.mode is DialogueMode.REFLECT
    assert list(state.eigenvectors) == ["aesthetic", "categorical", "gratitude", "heterarchy", "generativity", "joy"]
    assert state.eigenvectors["categorical"].value == 0.92
    assert AXES["joy"].low == "Austere" and AXES["joy"].high == "Playful"
    assert state.revision == 0 and state.interactions == 0 and state.last_interaction is None


def test_json_round_trip_is_exact() -> None:
    state = (
        SoulState(soul_id="k1", persona="kent")
        .with_mode("challenge")
        .with_eigenvector("joy", 0.31, 0.97)
        .with_interaction(tokens=120)
        .evolve(revision=7)
    )
    again = SoulState.from_json(state.to_json())
    assert again == state
    assert again.to_json() == state.to_json()
    assert again.mode is DialogueMode.CHALLENGE and again.eigenvectors["joy"] == Eigenvector(0.31, 0.97)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(mode="SHOUT"), r"mode must be one of REFLECT, ADVISE, CHALLENGE, EXPLORE \(got 'SHOUT'\)"),
        (lambda d: d["eigenvectors"]["joy"].update(value=1.2), r"eigenvector 'joy' value must be in \[0, 1\]"),
        (lambda d: d["eigenvectors"]["aesthetic"].update(confidence=-0.1), r"'aesthetic' confidence"),
        (lambda d: d["eigenvectors"]["joy"].update(value="high"), r"'joy' value must be a number"),
        (lambda d: d.update(extra=1), r"unknown field\(s\): extra"),
        (lambda d: d.pop("mode"), r"lacks field\(s\): mode"),
        (lambda d: d.update(schema_version=99), r"schema version 99"),
        (lambda d: d.update(interactions=-1), r"interactions must be a whole number"),
        (lambda d: d.update(created_at="yesterday"), r"created_at is not an ISO-8601 time"),
        (lambda d: d.update(soul_id="../etc"), r"soul id must be"),
    ],
)
def test_bad_data_is_rejected_with_a_precise_error(mutate: object, message: str) -> None:
    data = json.loads(SoulState(soul_id="k1", persona="kent").to_json())
    mutate(data)  # type: ignore[operator]
    with pytest.raises(SoulDataError, match=message):
        SoulState.from_json(json.dumps(data))


@pytest.mark.parametrize("text", ["", "{", "[]", "null", '"soul"', "{" * 100_000, b"\xff\xfe"])
def test_corrupt_json_is_a_clear_error_never_a_crash(text: str | bytes) -> None:
    with pytest.raises(SoulDataError, match="soul data"):
        SoulState.from_json(text)


def test_nan_in_json_is_rejected_naming_the_axis() -> None:
    text = SoulState(soul_id="k1", persona="kent").to_json().replace('"value":0.75', '"value":NaN')
    with pytest.raises(SoulDataError, match="NaN is not allowed"):
        SoulState.from_json(text)
    with pytest.raises(ValidationError, match=r"eigenvector 'joy' value must be in \[0, 1\] \(got nan\)"):
        SoulState(soul_id="k1", persona="kent").with_eigenvector("joy", math.nan)


def test_changes_are_validated_precisely() -> None:
    state = SoulState(soul_id="k1", persona="kent")
    with pytest.raises(ValidationError, match=r"mode must be one of REFLECT, ADVISE, CHALLENGE, EXPLORE"):
        state.with_mode("sing")
    with pytest.raises(ValidationError, match=r"eigenvector 'heterarchy' confidence must be in \[0, 1\] \(got 2\)"):
        state.with_eigenvector("heterarchy", confidence=2)
    with pytest.raises(ValidationError, match=r"unknown eigenvector axis 'mood'; known axes: aesthetic"):
        state.with_eigenvector("mood", 0.5)
    with pytest.raises(ValidationError, match="tokens"):
        state.with_interaction(tokens=-5)
    assert state.with_mode(" explore ").mode is DialogueMode.EXPLORE


def test_a_nudge_moves_known_axes_by_finite_deltas_within_bounds() -> None:
    state = SoulState(soul_id="k1", persona="kent").with_eigenvector("joy", 0.75)
    moved = state.nudged({"joy": 0.5, "aesthetic": -5})
    assert moved.eigenvectors["joy"].value == 1.0 and moved.eigenvectors["aesthetic"].value == 0.0
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValidationError, match="nudge of eigenvector 'joy' must be a finite number"):
            state.nudged({"aesthetic": 0.1, "joy": bad})
    with pytest.raises(ValidationError, match="must be a number"):
        state.nudged({"joy": "0.1"})  # type: ignore[dict-item]
    with pytest.raises(ValidationError, match="heart"):
        state.nudged({"heart": 0.1})


def test_soul_settings_from_env() -> None:
    settings = Settings.from_env({"KGENTS_SOUL_TTL": "90", "KGENTS_SPARK_PREFIX": "team-a"})
    assert settings.soul_ttl_seconds == 90.0 and settings.spark_prefix == "team-a"
    assert Settings.from_env({}).soul_ttl_seconds == 86_400
    for bad in ("0", "-3", "nan", "soon", "1e12"):
        with pytest.raises(ConfigError, match="KGENTS_SOUL_TTL"):
            Settings.from_env({"KGENTS_SOUL_TTL": bad})
    with pytest.raises(ConfigError, match="KGENTS_SPARK_PREFIX"):
        Settings.from_env({"KGENTS_SPARK_PREFIX": "a b*"})


def test_mode_change_messages_parse_strictly() -> None:
    change = ModeChange("kent", "k1", DialogueMode.ADVISE, DialogueMode.REFLECT, 3, "i1", 123)
    assert ModeChange.from_json(change.to_json()) == change
    for junk in ("", "{}", "[1]", '{"v": 1}', change.to_json().replace("ADVISE", "YELL"), "\x00"):
        assert ModeChange.from_json(junk) is None


def test_percentiles_and_rates() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 0.95) == 95.0
    assert hit_rate(0, 0) is None and hit_rate(9, 1) == 0.9
    assert memory_pressure(50, 0) is None and memory_pressure(50, 100) == 0.5


@pytest.mark.parametrize(
    ("rate", "pressure", "level"),
    [
        (0.95, 0.1, "THRIVING"),
        (0.95, None, "THRIVING"),
        (None, None, "THRIVING"),
        (0.8, 0.1, "HEALTHY"),
        (0.95, 0.8, "HEALTHY"),
        (0.6, 0.1, "STRAINED"),
        (0.4, 0.1, "DEGRADED"),
        (0.95, 0.97, "DEGRADED"),
    ],
)
def test_reflex_level_thresholds(rate: float | None, pressure: float | None, level: str) -> None:
    found, reason = reflex_level(rate, pressure)
    assert found == level and reason


def test_unreachable_spark_is_critical_and_says_why() -> None:
    level, reason = reflex_level(0.99, 0.1, reachable=False)
    assert level == "CRITICAL" and "unreachable" in reason


def test_reflex_metrics_from_counts() -> None:
    timer = OpTimer()
    timer.hits, timer.misses = 45, 5
    for ms in (0.1, 0.2, 0.3, 5.0):
        timer.record(ms)
    metrics = reflex_metrics(timer, SparkStats("redis", 700, 1000, 1234.0, 3, 2))
    assert metrics.hit_rate == 0.9 and metrics.latency_p50_ms == 0.2 and metrics.latency_p95_ms == 5.0
    assert metrics.memory_pressure == 0.7 and metrics.level == "HEALTHY"
    assert metrics.to_dict()["connected_instances"] == 2

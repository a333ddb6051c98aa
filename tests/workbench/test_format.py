"""The workbench's pure parts: bars, alert transitions, thresholds, the projection, the garden filter, drift events."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from kgents.errors import ValidationError
from kgents.garden.model import EntryType, Lifecycle
from kgents.health.levels import DEFAULT_THRESHOLDS
from kgents.health.model import Level, TriadHealth
from kgents.memory.api import SoulView
from kgents.workbench.demo import degraded, healthy, seeded_drift, seeded_entries, seeded_vectors
from kgents.workbench.format import (
    announcement,
    badge,
    bar,
    figure,
    fraction,
    levels_of,
    spark,
    threshold_rows,
    transitions,
)
from kgents.workbench.garden import parse_filter
from kgents.workbench.loom import drift_event
from kgents.workbench.projection import ProjectionCache, key_of, pca_2d, place
from kgents.workbench.widgets import eigen_lines


def test_bar_and_fraction() -> None:
    assert bar(1.0, 4) == "████" and bar(0.0, 4) == "░░░░" and bar(0.5, 4) == "██░░" and bar(7, 2) == "██"
    assert fraction(Level.THRIVING) == 1.0 and fraction(Level.CRITICAL) == 0.0 and fraction(Level.UNKNOWN) == 0.0
    assert figure(None) == "-" and figure(True) == "yes" and figure(1234.5) == "1,234" and figure(0.123456) == "0.123"


def _with(health: TriadHealth, part: str, level: Level) -> TriadHealth:
    parts = tuple(replace(p, level=level) if p.name == part else p for p in health.parts)
    return replace(health, parts=parts)


def test_transitions_alert_on_degradation_worsening_and_recovery_only() -> None:
    calm = healthy()
    assert transitions({}, calm) == []
    assert transitions(levels_of(calm), calm) == []
    bad = _with(calm, "reflex", Level.DEGRADED)
    [alert] = transitions(levels_of(calm), bad)
    assert (alert.part, alert.level, alert.recovered, alert.title) == (
        "reflex",
        Level.DEGRADED,
        False,
        "Reflex DEGRADED",
    )
    assert transitions(levels_of(bad), bad) == [], "a lasting degradation is announced once"
    worse = _with(calm, "reflex", Level.CRITICAL)
    assert [a.level for a in transitions(levels_of(bad), worse)] == [Level.CRITICAL]
    [back] = transitions(levels_of(worse), calm)
    assert back.recovered and back.title == "Reflex recovered: HEALTHY"
    assert {a.part for a in transitions({}, degraded())} == {"resonance", "reflex", "synapse"}, "alerting at open"


def test_threshold_rows_name_every_boundary_of_a_part() -> None:
    rows = dict(threshold_rows("synapse", DEFAULT_THRESHOLDS))
    assert rows["pending_age_s_below"] == "5.0 / 30.0 / 120 / 600"
    assert set(rows) == {"pending_age_s_below", "lag_p95_ms_below", "relay_grace_s", "probe_timeout_s"}


def test_projection_is_deterministic_scaled_and_clusters_by_topic() -> None:
    entries = seeded_entries()
    vectors = seeded_vectors(entries)
    first, again = pca_2d(vectors), pca_2d(vectors[::-1].copy())[::-1]
    assert first.shape == (len(entries), 2) and np.abs(first).max() == pytest.approx(1.0)
    assert np.allclose(first, again, atol=1e-6), "row order does not change the picture"
    assert np.allclose(pca_2d(-vectors), -first, atol=1e-6), "axes signs follow the data, not the SVD"
    by_topic: dict[str, list[np.ndarray]] = {}
    for entry, point in zip(entries, first, strict=True):
        by_topic.setdefault(entry.tags[0], []).append(point)
    spread = max(float(np.linalg.norm(np.std(v, axis=0))) for v in by_topic.values())
    centres = [np.mean(v, axis=0) for v in by_topic.values()]
    apart = min(float(np.linalg.norm(a - b)) for i, a in enumerate(centres) for b in centres[i + 1 :])
    assert apart > spread, "entries of one topic sit together"
    assert pca_2d(vectors[:1]).tolist() == [[0.0, 0.0]]
    cells = place(first, 20, 10)
    assert sum(c.count for c in cells.values()) == len(entries)
    assert all(0 <= col < 20 and 0 <= row < 10 for col, row in cells)


def test_projection_cache_is_keyed_by_entry_versions() -> None:
    cache = ProjectionCache()
    key = key_of(["a", "b"], [1, 1])
    cache.put(key, np.zeros((2, 2)))
    assert cache.get(key_of(["a", "b"], [1, 1])) is not None
    assert cache.get(key_of(["a", "b"], [1, 2])) is None


def test_parse_filter() -> None:
    chosen = parse_filter("is:seed type:value tag:code small  code")
    assert chosen.lifecycles == (Lifecycle.SEED,) and chosen.entry_types == (EntryType.VALUE,)
    assert chosen.tags == ("code",) and chosen.text == "small code" and chosen.include_compost
    assert parse_filter("").text is None
    with pytest.raises(ValidationError):
        parse_filter("is:blooming")


def test_drift_events() -> None:
    samples = seeded_drift()
    events = [drift_event(samples[i - 1] if i else None, s) for i, s in enumerate(samples)]
    assert events[13] == "▼ drift" and events[20] == "▲ mended" and events[0] == ""


def test_one_announcement_per_refresh() -> None:
    alerts = transitions({}, degraded())
    title, message = announcement(alerts)
    assert title == "3 parts changed" and message.splitlines()[1].startswith("Reflex CRITICAL: Redis unreachable")
    [one] = alerts[1:2]
    assert announcement([one]) == ("Reflex CRITICAL", "Redis unreachable: Connection refused")
    assert all(len(line) < 100 for line in message.splitlines())


def test_spark_keeps_a_fixed_scale() -> None:
    assert spark([0.41], 4) == "   ▄" and spark([1.0, 0.0], 3) == " █▁"
    assert spark([], 2) == "  " and spark([2.0, -1.0], 2) == "█▁"
    assert spark([float(i) for i in range(10)], 3, 0, 9) == "▆▇█"


def test_badge_marks_only_alerting_levels() -> None:
    assert badge(Level.DEGRADED) == "▲ DEGRADED" and badge(Level.CRITICAL) == "✖ CRITICAL"
    assert badge(Level.HEALTHY) == "HEALTHY" and badge(Level.UNKNOWN) == "UNKNOWN"


def test_eigenvectors_two_a_line_fit_an_80_column_card() -> None:
    soul = SoulView(
        "kent", "REFLECT", {k: (0.5, 1.0) for k in ("a", "b", "c", "generativity", "heterarchy")}, 1, 0, "x"
    )
    lines = eigen_lines(soul)
    assert len(lines) == 3 and all(len(line) <= 76 for line in lines)
    assert lines[0].startswith("a ") and "+0.50 (100%)" in lines[0]

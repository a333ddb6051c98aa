"""The relay's pure rules: backoff, liveness, percentiles, the apply plan, coherency."""

from __future__ import annotations

import uuid

from kgents.garden.model import GardenEntry
from kgents.resonance.hashing import content_hash
from kgents.stats import percentile
from kgents.synapse.apply import payload_of, plan_apply
from kgents.synapse.coherency import compare
from kgents.synapse.policy import (
    backoff_delay,
    is_alive,
    should_dead_letter,
)
from kgents.synapse.records import EntryState


def test_backoff_doubles_and_caps() -> None:
    assert backoff_delay(0) == 0.0
    assert [backoff_delay(n, base_s=1.0, cap_s=10.0) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff_delay(10_000, base_s=1.0, cap_s=60.0) == 60.0


def test_dead_letter_threshold() -> None:
    assert not should_dead_letter(2, 3)
    assert should_dead_letter(3, 3)


def test_liveness_is_interval_plus_margin() -> None:
    assert is_alive(1.0, 2.0)
    assert is_alive(5.9, 2.0)
    assert not is_alive(6.0, 2.0)
    assert not is_alive(None, 2.0)
    assert not is_alive(2.5, 2.0, margin_s=0.5)


def test_percentile() -> None:
    assert percentile([], 0.5) is None
    assert percentile([5.0], 0.95) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile(list(map(float, range(101))), 0.95) == 95.0


def _entry(content: str = "keep code small", version: int = 1, confidence: float = 0.5) -> GardenEntry:
    return GardenEntry(persona="kent", content=content, entry_type="PREFERENCE", confidence=confidence, version=version)


def st(entry: GardenEntry) -> EntryState:
    return EntryState.of(entry)


def test_plan_embeds_new_and_changed_content_only() -> None:
    e = _entry()
    fresh = plan_apply({e.id: st(e)}, {}, "m")
    assert [x.id for x, _ in fresh.embeds] == [e.id]
    stored = payload_of(st(e), content_hash(e.content), "m")
    same = plan_apply({e.id: st(e)}, {e.id: stored}, "m")
    assert same.unchanged == [e.id] and not same.embeds and not same.payloads
    nurtured = e.evolve(confidence=0.9)
    meta = plan_apply({e.id: st(nurtured)}, {e.id: stored}, "m")
    assert meta.payloads and meta.payloads[0][1].confidence == 0.9 and not meta.embeds
    rewritten = e.evolve(content="something else entirely")
    assert plan_apply({e.id: st(rewritten)}, {e.id: stored}, "m").embeds
    assert plan_apply({e.id: st(e)}, {e.id: stored}, "other-model").embeds


def test_plan_deletes_missing_rows_and_never_goes_back() -> None:
    e = _entry(version=3)
    newer = payload_of(st(e.evolve(confidence=0.7)), content_hash(e.content), "m")
    p = plan_apply({e.id: st(e)}, {e.id: newer}, "m")
    assert p.unchanged == [e.id]
    gone = plan_apply({e.id: None}, {e.id: newer}, "m")
    assert gone.deletes == [e.id]
    assert plan_apply({e.id: None}, {}, "m").unchanged == [e.id]


def test_coherency_classifies_every_id() -> None:
    a, b, c, d = (uuid.uuid4() for _ in range(4))
    report = compare({a: ("p", 1), b: ("p", 2), c: ("p", 1)}, {a: ("p", 1), b: ("p", 1), d: ("p", 4)})
    assert (report.matched, report.stale, report.missing, report.orphaned) == (1, 1, 1, 1)
    assert report.total == 4 and report.coherency_with_truth == 0.25
    assert compare({}, {}).coherency_with_truth == 1.0
    ahead = compare({a: ("p", 1)}, {a: ("p", 5)})
    assert ahead.ahead_ids == {a}


def _metrics(**overrides: object) -> object:
    from kgents.synapse.metrics import SynapseMetrics

    base: dict[str, object] = dict(
        queue_depth=0,
        queue_depth_capped=False,
        oldest_pending_age_s=None,
        latency_p50_ms=None,
        latency_p95_ms=None,
        processed=0,
        retried=0,
        dead=0,
        dead_letters=0,
        throughput_per_s=0.0,
        circuit_state="CLOSED",
        last_heartbeat_age_s=None,
        relays_alive=0,
    )
    base.update(overrides)
    return SynapseMetrics(**base)  # type: ignore[arg-type]


def test_status_level_is_worst_wins() -> None:
    from kgents.cli.synapse_cmd import status_level
    from kgents.health.model import Level

    assert status_level(_metrics(), 1.0) is Level.HEALTHY  # type: ignore[arg-type]
    assert status_level(_metrics(), None) is Level.UNKNOWN  # type: ignore[arg-type]
    assert status_level(_metrics(), 0.9) is Level.STRAINED  # type: ignore[arg-type]
    assert status_level(_metrics(dead_letters=1), 1.0) is Level.STRAINED  # type: ignore[arg-type]
    assert status_level(_metrics(queue_depth=5), 1.0) is Level.STRAINED  # type: ignore[arg-type]
    assert status_level(_metrics(queue_depth=5, relays_alive=1), 1.0) is Level.HEALTHY  # type: ignore[arg-type]
    assert status_level(_metrics(circuit_state="OPEN"), 1.0) is Level.CRITICAL  # type: ignore[arg-type]
    assert status_level(_metrics(), 0.4) is Level.CRITICAL  # type: ignore[arg-type]


def test_metrics_to_dict_is_json_ready() -> None:
    import json

    from kgents.synapse.metrics import RelayStats

    stats = RelayStats()
    data = _metrics(relays_alive=1).to_dict()  # type: ignore[attr-defined]
    assert json.loads(json.dumps(data))["relays_alive"] == 1
    snap = stats.snapshot()
    assert snap["latency_p50_ms"] is None and snap["throughput_per_s"] == 0.0 and snap["circuit"] == "CLOSED"

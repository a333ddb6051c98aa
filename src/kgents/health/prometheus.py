"""The triad's health as Prometheus metrics: one exposition for `kgents metrics serve` and the server's /metrics.

Units are in the names (`_seconds`, `_bytes`, `_ratio`, `_total`); every metric carries one label set per part
(`part`, `backend`). `render_prometheus(health)` gives the exposition bytes; `triad_registry(source)` a registry
whose collector asks `source` for a TriadHealth at every scrape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kgents.health.model import PartHealth, TriadHealth

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LABELS = ("part", "backend")

# (metric name, help, part, figure key, scale to the unit in the name)
GAUGES: tuple[tuple[str, str, str, str, float], ...] = (
    ("kgents_anchor_commit_latency_seconds", "Time of a probe commit on the anchor", "durability", "commit_ms", 1e-3),
    ("kgents_anchor_pool_available_ratio", "Share of the anchor pool free for work", "durability", "pool_available", 1),
    ("kgents_anchor_size_bytes", "Size of the anchor database", "durability", "database_bytes", 1),
    ("kgents_outbox_pending_events", "CDC events waiting in the outbox", "durability", "pending_events", 1),
    ("kgents_index_coherency_ratio", "matched / (anchor ids | index ids)", "resonance", "coherency_with_truth", 1),
    ("kgents_index_stale_entries", "Entries whose index version differs", "resonance", "stale", 1),
    ("kgents_index_missing_entries", "Anchor entries absent from the index", "resonance", "missing", 1),
    ("kgents_index_orphaned_entries", "Index points with no anchor entry", "resonance", "orphaned", 1),
    ("kgents_index_points", "Points in the active collection", "resonance", "entries_indexed", 1),
    ("kgents_index_search_latency_seconds", "Time of a probe search", "resonance", "search_ms", 1e-3),
    ("kgents_spark_hit_ratio", "Redis keyspace hits / lookups", "reflex", "hit_rate", 1),
    ("kgents_spark_memory_used_bytes", "Redis used memory", "reflex", "memory_used_bytes", 1),
    ("kgents_spark_memory_max_bytes", "Redis maxmemory (absent: no limit)", "reflex", "memory_max_bytes", 1),
    ("kgents_spark_commands_per_second", "Redis instantaneous commands per second", "reflex", "commands_per_s", 1),
    ("kgents_spark_latency_seconds", "Time of a probe lookup", "reflex", "latency_ms", 1e-3),
    ("kgents_synapse_oldest_pending_age_seconds", "Age of the oldest pending event", "synapse", "oldest_pending_s", 1),
    ("kgents_synapse_lag_p50_seconds", "Commit to applied latency, median", "synapse", "lag_p50_ms", 1e-3),
    ("kgents_synapse_lag_p95_seconds", "Commit to applied latency, 95th percentile", "synapse", "lag_p95_ms", 1e-3),
    ("kgents_synapse_dead_letters", "Events that gave up (dead letters)", "synapse", "dead_letters", 1),
    ("kgents_synapse_heartbeat_age_seconds", "Age of the newest relay heartbeat", "synapse", "heartbeat_age_s", 1),
    ("kgents_synapse_relays_alive", "Relays with a live heartbeat", "synapse", "relays_alive", 1),
    ("kgents_synapse_throughput_events_per_second", "Events applied per second", "synapse", "throughput_per_s", 1),
)
COUNTERS: tuple[tuple[str, str, str, str], ...] = (
    ("kgents_synapse_events_processed", "Outbox events applied (every relay)", "synapse", "events_processed"),
    ("kgents_synapse_events_retried", "Failed attempts that were retried", "synapse", "events_retried"),
)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    return float(value) if isinstance(value, int | float) else None


def metrics_for(health: TriadHealth) -> Iterator[Metric]:
    """Every metric family for `health` (figures that are unknown are left out, never reported as 0)."""
    level = GaugeMetricFamily(
        "kgents_health_level", "Health level: 4 THRIVING … 0 CRITICAL, -1 UNKNOWN (overall: part=triad)", labels=LABELS
    )
    up = GaugeMetricFamily("kgents_health_up", "1 when the part was reached and measured", labels=LABELS)
    took = GaugeMetricFamily("kgents_health_probe_duration_seconds", "Time the part's probe took", labels=LABELS)
    level.add_metric(["triad", "all"], health.level.score)
    for part in health.parts:
        labels = [part.name, part.backend]
        level.add_metric(labels, part.level.score)
        up.add_metric(labels, 0.0 if part.error else 1.0)
        took.add_metric(labels, part.duration_ms / 1000.0)
    yield from (level, up, took)
    parts = {p.name: p for p in health.parts}
    for name, text, part_name, key, scale in GAUGES:
        family = GaugeMetricFamily(name, text, labels=LABELS)
        _add(family, parts.get(part_name), key, scale)
        yield family
    circuit = GaugeMetricFamily("kgents_synapse_circuit_open", "1 when the relay's breaker is open", labels=LABELS)
    relay_part = parts.get("synapse")
    if relay_part is not None and relay_part.figures.get("circuit"):
        circuit.add_metric(
            [relay_part.name, relay_part.backend], 1.0 if relay_part.figures["circuit"] == "OPEN" else 0.0
        )
    yield circuit
    for name, text, part_name, key in COUNTERS:
        counter = CounterMetricFamily(name, text, labels=LABELS)
        owner = parts.get(part_name)
        value = None if owner is None else _number(owner.figures.get(key))
        if owner is not None and value is not None:
            counter.add_metric([owner.name, owner.backend], value)
        yield counter


def _add(family: GaugeMetricFamily, part: PartHealth | None, key: str, scale: float) -> None:
    value = None if part is None else _number(part.figures.get(key))
    if part is not None and value is not None:
        family.add_metric([part.name, part.backend], value * scale)


class TriadCollector(Collector):
    """Asks `source` for the health at every scrape."""

    def __init__(self, source: Callable[[], TriadHealth]) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        yield from metrics_for(self.source())


def triad_registry(source: Callable[[], TriadHealth]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TriadCollector(source))
    return registry


def render_prometheus(health: TriadHealth) -> bytes:
    """The text exposition of `health` (what /metrics serves, with CONTENT_TYPE)."""
    return generate_latest(triad_registry(lambda: health))

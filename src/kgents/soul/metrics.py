"""Reflex metrics: how fast and how useful the Spark is, for `kgents soul` and the triad health model.

Counting happens in `SoulService` (backend-agnostic); the engine's own figures come from `SparkStore.stats()`.
Thresholds are small pure functions so the health model, the CLI and the tests agree on one reading.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from kgents.soul.spark import SparkStats

MIN_LOOKUPS = 20
"""Fewer cache lookups than this are too few to judge the hit rate by (a fresh process always misses first)."""
LATENCY_WINDOW = 1024
"""Cache operation latencies kept for the percentiles (the most recent ones)."""

# Reflex thresholds (design notes): (level, minimum hit rate, maximum memory pressure), best first.
REFLEX_LEVELS: tuple[tuple[str, float, float], ...] = (
    ("THRIVING", 0.9, 0.7),
    ("HEALTHY", 0.7, 0.9),
    ("STRAINED", 0.5, 0.95),
)


def percentile(samples: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile (`fraction` in [0, 1]) of `samples`, or None when there are none."""
    if not samples:
        return None
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def hit_rate(hits: int, misses: int) -> float | None:
    total = hits + misses
    return None if total == 0 else hits / total


def memory_pressure(used: int | None, maximum: int | None) -> float | None:
    """used / max memory, or None when unknown or unlimited (maxmemory 0)."""
    if used is None or not maximum:
        return None
    return used / maximum


def reflex_level(rate: float | None, pressure: float | None, reachable: bool = True) -> tuple[str, str]:
    """The Reflex health level and the reason for it (unknown figures do not count against it)."""
    if not reachable:
        return "CRITICAL", "the spark is unreachable (the snapshot still serves every soul)"
    for level, min_rate, max_pressure in REFLEX_LEVELS:
        rate_ok = rate is None or rate > min_rate
        pressure_ok = pressure is None or pressure < max_pressure
        if rate_ok and pressure_ok:
            return level, _reason(rate, pressure)
    if rate is not None and rate <= REFLEX_LEVELS[-1][1]:
        return "DEGRADED", f"hit rate {rate:.0%} is at or below {REFLEX_LEVELS[-1][1]:.0%}"
    return "DEGRADED", f"memory pressure {pressure:.0%} is at or above {REFLEX_LEVELS[-1][2]:.0%}"


def _reason(rate: float | None, pressure: float | None) -> str:
    rate_text = "too few lookups to judge the hit rate" if rate is None else f"hit rate {rate:.0%}"
    pressure_text = "no memory limit" if pressure is None else f"memory pressure {pressure:.0%}"
    return f"{rate_text}, {pressure_text}"


class OpTimer:
    """Hits, misses and a window of cache latencies (milliseconds) for one service."""

    def __init__(self, window: int = LATENCY_WINDOW) -> None:
        self.hits = 0
        self.misses = 0
        self.latencies_ms: deque[float] = deque(maxlen=window)

    def record(self, elapsed_ms: float) -> None:
        self.latencies_ms.append(elapsed_ms)


@dataclass(frozen=True, slots=True)
class ReflexMetrics:
    backend: str
    hits: int
    misses: int
    errors: int
    hit_rate: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    used_memory_bytes: int | None
    max_memory_bytes: int | None
    memory_pressure: float | None
    ops_per_second: float | None
    connected_clients: int | None
    connected_instances: int
    reachable: bool
    level: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reflex_metrics(timer: OpTimer, stats: SparkStats) -> ReflexMetrics:
    rate = hit_rate(timer.hits, timer.misses)
    pressure = memory_pressure(stats.used_memory_bytes, stats.max_memory_bytes)
    judged = rate if timer.hits + timer.misses >= MIN_LOOKUPS else None
    level, reason = reflex_level(judged, pressure, stats.reachable)
    samples = list(timer.latencies_ms)
    return ReflexMetrics(
        backend=stats.backend,
        hits=timer.hits,
        misses=timer.misses,
        errors=stats.errors,
        hit_rate=rate,
        latency_p50_ms=percentile(samples, 0.50),
        latency_p95_ms=percentile(samples, 0.95),
        used_memory_bytes=stats.used_memory_bytes,
        max_memory_bytes=stats.max_memory_bytes or None,
        memory_pressure=pressure,
        ops_per_second=stats.ops_per_second,
        connected_clients=stats.connected_clients,
        connected_instances=stats.connected_instances,
        reachable=stats.reachable,
        level=level,
        reason=reason,
    )

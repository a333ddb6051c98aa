"""The triad health model: levels, one part's health, the whole triad's, and how they read as JSON.

Pure data and pure functions (no I/O, no UI): the collectors fill it, the CLI, the ghost files, AGENTESE and the
Prometheus exposition all render the same object. The JSON shape is versioned (`SCHEMA_VERSION`) and documented
in README.md; `tests/snapshots/health_schema.json` pins it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

SCHEMA_VERSION = 1
PARTS = ("durability", "resonance", "reflex", "synapse")
"""The parts of the triad, in the order they are shown (and the order ties are explained in)."""

FIGURES: dict[str, tuple[str, ...]] = {
    "durability": (
        "connect_ms",
        "commit_ms",
        "read_only",
        "pool_size",
        "pool_max",
        "pool_available",
        "pending_events",
        "database_bytes",
    ),
    "resonance": (
        "coherency_with_truth",
        "matched",
        "stale",
        "missing",
        "orphaned",
        "total",
        "search_ms",
        "entries_indexed",
        "collection",
        "embedder",
        "index_state",
        "measured_by",
        "age_s",
    ),
    "reflex": (
        "hit_rate",
        "lookups",
        "memory_used_bytes",
        "memory_max_bytes",
        "memory_pressure",
        "commands_per_s",
        "latency_ms",
        "connected_instances",
    ),
    "synapse": (
        "events_processed",
        "events_retried",
        "pending_events",
        "oldest_pending_s",
        "lag_p50_ms",
        "lag_p95_ms",
        "dead_letters",
        "circuit",
        "heartbeat_age_s",
        "relays_alive",
        "relay_expected",
        "throughput_per_s",
    ),
}
"""Every part's figures, always present in the JSON (null when unknown): the documented, stable keys."""


class Level(StrEnum):
    """How well a part (or the triad) is doing, best first; UNKNOWN means no data (a stale file, no figure)."""

    THRIVING = "THRIVING"
    HEALTHY = "HEALTHY"
    STRAINED = "STRAINED"
    DEGRADED = "DEGRADED"
    CRITICAL = "CRITICAL"
    UNKNOWN = "UNKNOWN"

    @property
    def rank(self) -> int:
        """0 best … 4 worst; UNKNOWN ranks beside CRITICAL's worse side (no data is never good news)."""
        return _RANK[self]

    @property
    def score(self) -> int:
        """For gauges: THRIVING 4 … CRITICAL 0, UNKNOWN -1."""
        return _SCORE[self]

    @property
    def alerting(self) -> bool:
        """DEGRADED or CRITICAL: worth a line in the thought stream."""
        return self in (Level.DEGRADED, Level.CRITICAL)

    @property
    def check_status(self) -> str:
        """The `application/health+json` status: pass, warn or fail."""
        if self in (Level.THRIVING, Level.HEALTHY):
            return "pass"
        if self in (Level.STRAINED, Level.DEGRADED):
            return "warn"
        return "fail"


_RANK = {
    Level.THRIVING: 0,
    Level.HEALTHY: 1,
    Level.STRAINED: 2,
    Level.DEGRADED: 3,
    Level.UNKNOWN: 4,
    Level.CRITICAL: 5,
}


_SCORE = {
    Level.THRIVING: 4,
    Level.HEALTHY: 3,
    Level.STRAINED: 2,
    Level.DEGRADED: 1,
    Level.CRITICAL: 0,
    Level.UNKNOWN: -1,
}


def parse_level(text: object) -> Level:
    """A level from its name (any case); anything else is UNKNOWN."""
    if isinstance(text, Level):
        return text
    try:
        return Level(str(text).upper())
    except ValueError:
        return Level.UNKNOWN


def worst(levels: list[Level]) -> Level:
    """The worst of `levels` (CRITICAL beats UNKNOWN beats DEGRADED …); UNKNOWN for none."""
    return max(levels, key=lambda lv: lv.rank) if levels else Level.UNKNOWN


@dataclass(frozen=True, slots=True)
class Verdict:
    """A level and the reason for it, in words."""

    level: Level
    reason: str


@dataclass(frozen=True, slots=True)
class PartHealth:
    """One part of the triad: its level, why, what it runs on, and the figures behind the verdict."""

    name: str
    level: Level
    reason: str
    backend: str
    """What the part runs on, safe to print: `SQLite`, `PostgreSQL`, `Qdrant Edge`, `Redis`, `embedded`…"""
    figures: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    """Why the part could not be reached or measured (then the level is CRITICAL)."""
    duration_ms: float = 0.0
    configured: bool = True
    """False for a part left at its in-process default (no Redis): not a fault."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "level": self.level.value,
            "status": self.level.check_status,
            "reason": self.reason,
            "backend": self.backend,
            "configured": self.configured,
            "error": self.error,
            "duration_ms": round(self.duration_ms, 3),
            "figures": {key: self.figures.get(key) for key in FIGURES.get(self.name, tuple(self.figures))},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PartHealth:
        return cls(
            name=str(data["name"]),
            level=parse_level(data.get("level")),
            reason=str(data.get("reason", "")),
            backend=str(data.get("backend", "")),
            figures=dict(data.get("figures") or {}),
            error=data.get("error"),
            duration_ms=float(data.get("duration_ms") or 0.0),
            configured=bool(data.get("configured", True)),
        )


def unreachable(name: str, backend: str, error: str, duration_ms: float = 0.0) -> PartHealth:
    """A part that could not be reached: CRITICAL, with its error as the reason."""
    return PartHealth(name, Level.CRITICAL, f"{error}", backend, {}, error, duration_ms)


@dataclass(frozen=True, slots=True)
class TriadHealth:
    """Every part and the verdict: the worst part's level, with its reason in words."""

    parts: tuple[PartHealth, ...]
    measured_at: datetime
    duration_ms: float = 0.0

    def part(self, name: str) -> PartHealth | None:
        return next((p for p in self.parts if p.name == name), None)

    @property
    def verdict(self) -> Verdict:
        return overall(self.parts)

    @property
    def level(self) -> Level:
        return self.verdict.level

    @property
    def ready(self) -> bool:
        """For a server's /readyz: the anchor answers (durability measured, not CRITICAL or UNKNOWN). A weak index
        or Spark lowers quality, not the ability to remember, so they never make it unready."""
        durability = self.part("durability")
        return durability is not None and durability.level not in (Level.CRITICAL, Level.UNKNOWN)

    @property
    def drift(self) -> float | None:
        """1 - coherency_with_truth when measured (what the status bar shows as `drift:33%`)."""
        resonance = self.part("resonance")
        coherency = None if resonance is None else resonance.figures.get("coherency_with_truth")
        return None if coherency is None else max(0.0, 1.0 - float(coherency))

    def to_dict(self) -> dict[str, Any]:
        verdict = self.verdict
        stamp = self.measured_at.isoformat()
        return {
            "schema_version": SCHEMA_VERSION,
            "status": verdict.level.check_status,
            "level": verdict.level.value,
            "reason": verdict.reason,
            "measured_at": stamp,
            "duration_ms": round(self.duration_ms, 3),
            "parts": {p.name: p.to_dict() for p in self.parts},
            "checks": {
                f"{p.name}:level": [
                    {
                        "componentType": "datastore" if p.name != "synapse" else "component",
                        "observedValue": p.level.value,
                        "status": p.level.check_status,
                        "output": p.reason,
                        "time": stamp,
                    }
                ]
                for p in self.parts
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TriadHealth:
        parts = tuple(PartHealth.from_dict(p) for p in (data.get("parts") or {}).values())
        return cls(parts, datetime.fromisoformat(str(data["measured_at"])), float(data.get("duration_ms") or 0.0))


def overall(parts: tuple[PartHealth, ...] | list[PartHealth]) -> Verdict:
    """The worst part's level, and the reason of every part at that level (in PARTS order)."""
    level = worst([p.level for p in parts])
    if not parts:
        return Verdict(Level.UNKNOWN, "no part of the triad was measured")
    if level in (Level.THRIVING, Level.HEALTHY):
        return Verdict(level, "every part thriving" if level is Level.THRIVING else "every part healthy or better")
    reasons = [p.reason for p in sorted(parts, key=_order) if p.level is level]
    return Verdict(level, "; ".join(reasons))


def _order(part: PartHealth) -> int:
    return PARTS.index(part.name) if part.name in PARTS else len(PARTS)

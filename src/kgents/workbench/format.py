"""Pure helpers of the workbench: level styles, bars, figures, alert transitions, bounded series, thresholds."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, fields
from typing import Any

from kgents.health.levels import Thresholds
from kgents.health.model import Level, PartHealth, TriadHealth

TITLES = {"durability": "Durability", "resonance": "Resonance", "reflex": "Reflex", "synapse": "Synapse"}
BAR_CHARS = ("█", "░")
SERIES_LEN = 120
"""Samples kept for a sparkline (two minutes at one refresh a second)."""

THRESHOLD_KEYS: dict[str, tuple[str, ...]] = {
    "durability": ("pool_available_above", "commit_ms_below", "probe_timeout_s"),
    "resonance": ("coherency_above", "search_ms_below", "probe_timeout_s"),
    "reflex": ("hit_rate_above", "memory_pressure_below", "min_lookups", "probe_timeout_s"),
    "synapse": ("pending_age_s_below", "lag_p95_ms_below", "relay_grace_s", "probe_timeout_s"),
}


def level_class(level: Level) -> str:
    """The CSS class of a level: `lv-healthy`, `lv-critical`…"""
    return f"lv-{level.value.lower()}"


LEVEL_CLASSES = tuple(level_class(lv) for lv in Level)


def fraction(level: Level) -> float:
    """How full a part's bar is: THRIVING 1.0 … CRITICAL 0.0 (and UNKNOWN, no data, empty)."""
    return max(0, level.score) / 4.0


def bar(value: float, width: int) -> str:
    """A bar of `width` cells, `value` (0…1, clamped) of it full."""
    width = max(1, width)
    full = round(max(0.0, min(1.0, value)) * width)
    return BAR_CHARS[0] * full + BAR_CHARS[1] * (width - full)


SPARKS = "▁▂▃▄▅▆▇█"


def spark(values: list[float], width: int, low: float = 0.0, high: float = 1.0) -> str:
    """The newest `width` values as a sparkline on a fixed scale (`low`…`high`, clamped), newest on the right;
    blank where there is no value yet. A fixed scale keeps 40 % looking like 40 %, not like the top."""
    width = max(1, width)
    span = (high - low) or 1.0
    shown = values[-width:]
    cells = [SPARKS[round(max(0.0, min(1.0, (v - low) / span)) * (len(SPARKS) - 1))] for v in shown]
    return " " * (width - len(cells)) + "".join(cells)


def signed_bar(value: float, width: int) -> str:
    """An eigenvector's bar: -1…1 mapped on `width` cells, the marker at the value."""
    width = max(3, width)
    at = round((max(-1.0, min(1.0, value)) + 1.0) / 2.0 * (width - 1))
    return "".join("┃" if i == at else ("─" if i != width // 2 else "┼") for i in range(width))


def badge(level: Level) -> str:
    """The level with the lasting mark of an alerting part: `▲ DEGRADED`, `✖ CRITICAL`, else the level alone."""
    mark = {Level.DEGRADED: "▲ ", Level.CRITICAL: "✖ "}.get(level, "")
    return f"{mark}{level.value}"


def figure(value: Any) -> str:
    """One figure, short: `-` when unknown, rounded floats, yes/no."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}" if abs(value) < 1 else f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def percent(value: Any) -> str:
    return "-" if value is None else f"{float(value) * 100:.0f} %"


@dataclass(frozen=True, slots=True)
class Alert:
    """A part's level crossing into (or out of) alerting: what the app shows and says."""

    part: str
    level: Level
    reason: str
    recovered: bool

    @property
    def title(self) -> str:
        name = TITLES.get(self.part, self.part)
        return f"{name} recovered: {self.level.value}" if self.recovered else f"{name} {self.level.value}"


def transitions(before: dict[str, Level], now: TriadHealth) -> list[Alert]:
    """The alerts between the last levels seen (`before`, empty at start) and `now`: a part newly DEGRADED or
    CRITICAL (or worsening from one to the other), or back from alerting to calm."""
    found: list[Alert] = []
    for part in now.parts:
        old = before.get(part.name)
        if part.level.alerting and (old is None or not old.alerting or part.level.rank > old.rank):
            found.append(Alert(part.name, part.level, part.reason, recovered=False))
        elif old is not None and old.alerting and not part.level.alerting and part.level is not Level.UNKNOWN:
            found.append(Alert(part.name, part.level, part.reason, recovered=True))
    return found


REASON_CHARS = 70


def announcement(alerts: list[Alert]) -> tuple[str, str]:
    """(title, message) of one notification for the alerts of one refresh: the part's own title when one turned,
    else how many; a line per part with its reason, shortened."""
    title = alerts[0].title if len(alerts) == 1 else f"{len(alerts)} parts changed"

    def line(alert: Alert) -> str:
        reason = alert.reason if len(alert.reason) <= REASON_CHARS else alert.reason[: REASON_CHARS - 1] + "…"
        return reason if len(alerts) == 1 else f"{alert.title}: {reason}"

    return title, "\n".join(line(a) for a in alerts)


def levels_of(health: TriadHealth) -> dict[str, Level]:
    return {p.name: p.level for p in health.parts}


def threshold_rows(part: str, thresholds: Thresholds) -> list[tuple[str, str]]:
    """(name, value) of every threshold that judges `part`."""
    known = {f.name for f in fields(thresholds)}
    return [(k, _bounds(getattr(thresholds, k))) for k in THRESHOLD_KEYS.get(part, ()) if k in known]


def _bounds(value: Any) -> str:
    if isinstance(value, tuple):
        return " / ".join(figure(v) for v in value)
    return figure(value)


def part_line(part: PartHealth) -> str:
    """`SQLite · anchor reachable, commit 1.3 ms`: the backend and the reason."""
    return f"{part.backend} · {part.reason}"


class Series:
    """A bounded series of floats for a sparkline (None, unknown, is left out)."""

    def __init__(self, size: int = SERIES_LEN) -> None:
        self._values: deque[float] = deque(maxlen=size)

    def add(self, value: float | None) -> None:
        if value is not None:
            self._values.append(float(value))

    @property
    def values(self) -> list[float]:
        return list(self._values)

    @property
    def last(self) -> float | None:
        return self._values[-1] if self._values else None

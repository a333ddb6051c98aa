"""The FluxScreen's widgets: agent cards, the triad's health bars with their coherency sparkline, Synapse's metrics.

Widgets only draw what they are given (`show(...)`); the app fetches, and tells them."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from kgents.health.model import PARTS, Level, PartHealth, TriadHealth
from kgents.memory.api import SoulView
from kgents.workbench.format import (
    LEVEL_CLASSES,
    TITLES,
    badge,
    bar,
    figure,
    fraction,
    level_class,
    part_line,
    percent,
    signed_bar,
    spark,
)

BAR_WIDTH = 12
GLITCH = "▚▞▓▒░▒▓▞▚▞▓▒"


class Spark(Widget):
    """A sparkline on a fixed scale (0…1 by default), as wide as the widget."""

    DEFAULT_CSS = "Spark { height: 1; }"

    def __init__(self, *, low: float = 0.0, high: float = 1.0, id: str | None = None) -> None:
        super().__init__(id=id)
        self.low, self.high = low, high
        self.values: list[float] = []

    def show(self, values: list[float]) -> None:
        self.values = values
        self.refresh()

    def render(self) -> str:
        return spark(self.values, self.size.width, self.low, self.high)


class PartSelected(Message):
    """A part's bar or widget was chosen: open its detail."""

    def __init__(self, part: str) -> None:
        super().__init__()
        self.part = part


def set_level_class(widget: Static | Vertical, level: Level | None) -> None:
    widget.remove_class(*LEVEL_CLASSES)
    if level is not None:
        widget.add_class(level_class(level))
    widget.set_class(level is not None and level.alerting, "-alert")


class HealthBar(Static, can_focus=True):
    """One part: its name, a bar as full as its level is good, the level, a badge while alerting, the reason."""

    def __init__(self, part: str) -> None:
        super().__init__(f"{TITLES[part]:<10} …", id=f"bar-{part}", classes="health-bar", markup=False)
        self.part = part
        self.health: PartHealth | None = None

    def show(self, health: PartHealth | None) -> None:
        self.health = health
        set_level_class(self, None if health is None else health.level)
        self.update(self._text())

    def glitch(self, on: bool) -> None:
        """The brief disturbance of a fresh alert (the app switches it off again)."""
        self.set_class(on, "-glitch")
        self.update(self._text())

    def _text(self) -> str:
        name = TITLES[self.part]
        if self.health is None:
            return f"{name:<10} {bar(0, BAR_WIDTH)} …"
        level = self.health.level
        drawn = GLITCH[:BAR_WIDTH] if self.has_class("-glitch") else bar(fraction(level), BAR_WIDTH)
        head = f"{name:<10} {drawn} {badge(level)}"
        return f"{head}\n  {part_line(self.health)}"

    def on_click(self) -> None:
        self.post_message(PartSelected(self.part))

    def key_enter(self) -> None:
        self.post_message(PartSelected(self.part))


class TriadHealthWidget(Vertical):
    """Durability, Resonance, Reflex and Synapse bars in level colours, and the coherency sparkline."""

    def compose(self) -> ComposeResult:
        yield Static("Database Triad", id="triad-title", classes="panel-title")
        for part in PARTS:
            yield HealthBar(part)
        yield Static("coherency -", id="coherency-label", classes="spark-label")
        yield Spark(id="coherency-sparkline")

    def show(self, health: TriadHealth | None, coherency: list[float], error: str | None) -> None:
        title = self.query_one("#triad-title", Static)
        if health is None:
            title.update(f"Database Triad · {error or 'measuring…'}")
        else:
            verdict = health.verdict
            title.update(f"Database Triad · {badge(verdict.level)} · {verdict.reason}")
            set_level_class(title, verdict.level)
        for part in PARTS:
            self.query_one(f"#bar-{part}", HealthBar).show(None if health is None else health.part(part))
        last = coherency[-1] if coherency else None
        self.query_one("#coherency-label", Static).update(f"coherency {percent(last)}")
        self.query_one("#coherency-sparkline", Spark).show(coherency)


class SynapseMetricsWidget(Vertical, can_focus=True):
    """The relay's lag sparkline, events per second, queue depth, dead letters and the breaker's state."""

    def compose(self) -> ComposeResult:
        yield Static("Synapse", id="synapse-title", classes="panel-title")
        yield Static("lag p95 -", id="lag-label", classes="spark-label")
        yield Spark(id="lag-sparkline")
        yield Static("", id="synapse-figures", markup=False)

    def show(self, part: PartHealth | None, lag: list[float], floor_ms: float) -> None:
        """`floor_ms`: the lag sparkline's top is at least this (the THRIVING bound), so a small lag looks small."""
        set_level_class(self, None if part is None else part.level)
        f = {} if part is None else part.figures
        title = "Synapse" if part is None else f"Synapse · {badge(part.level)}"
        self.query_one("#synapse-title", Static).update(title)
        self.query_one("#lag-label", Static).update(f"lag p95 {figure(f.get('lag_p95_ms'))} ms")
        lag_spark = self.query_one("#lag-sparkline", Spark)
        lag_spark.high = max([*lag, floor_ms])
        lag_spark.show(lag)
        rows = (
            ("events/s", f.get("throughput_per_s")),
            ("queue depth", f.get("pending_events")),
            ("oldest pending s", f.get("oldest_pending_s")),
            ("dead letters", f.get("dead_letters")),
            ("circuit", f.get("circuit")),
        )
        self.query_one("#synapse-figures", Static).update("\n".join(f"{k:<17}{figure(v)}" for k, v in rows))

    def on_click(self) -> None:
        self.post_message(PartSelected("synapse"))

    def key_enter(self) -> None:
        self.post_message(PartSelected("synapse"))


class AgentCard(Static):
    """One soul: its mode, eigenvector bars, session (where the read came from) and interactions."""

    def show(self, soul: SoulView) -> None:
        lines = [f"◉ {soul.soul_id} · mode {soul.mode} · session {soul.source} · rev {soul.revision}"]
        lines.extend(eigen_lines(soul))
        lines.append(f"last interaction #{soul.interactions}")
        self.update("\n".join(lines))


def eigen_lines(soul: SoulView) -> list[str]:
    """The eigenvectors two a line: `aesthetic    ───┼─┃── +0.62 (80%)`."""
    cells = [
        f"{axis[:12]:<12} {signed_bar(value, 9)} {value:+.2f} ({confidence:.0%})"
        for axis, (value, confidence) in sorted(soul.eigenvectors.items())
    ]
    return ["   ".join(cells[i : i + 2]) for i in range(0, len(cells), 2)]


def soul_lines_error(error: str) -> str:
    return f"◌ no soul to show\n{error}"

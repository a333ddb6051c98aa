"""WorkbenchApp: the screens, the key bindings, and the one-second refresh that never blocks input or overlaps.

The refresh runs in a thread worker that waits on the source's coroutine (run on a LoopThread); the next one
is armed only when it has finished, so a slow probe delays refreshes instead of piling them up."""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Literal

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.timer import Timer

from kgents.clock import utcnow
from kgents.health.collect import describe_error
from kgents.health.levels import DEFAULT_THRESHOLDS, Thresholds
from kgents.health.model import PARTS, Level, TriadHealth
from kgents.loop_thread import LoopThread
from kgents.memory.api import SoulView
from kgents.workbench.detail import DetailScreen
from kgents.workbench.flux import FluxScreen
from kgents.workbench.format import Alert, Series, announcement, levels_of, transitions
from kgents.workbench.garden import GardenScreen
from kgents.workbench.help import HelpScreen
from kgents.workbench.loom import LoomScreen
from kgents.workbench.mri import MRIScreen
from kgents.workbench.projection import ProjectionCache
from kgents.workbench.source import IO_S, WorkbenchSource
from kgents.workbench.widgets import HealthBar, PartSelected, SynapseMetricsWidget

RECENT_ERRORS = 20
NOTIFY_S = 8.0
SOUL_EVERY = 5
"""The soul is read on every fifth refresh (it changes with a conversation, not by the second)."""


@dataclass
class BenchState:
    """What the last refreshes found, for every screen to draw."""

    health: TriadHealth | None = None
    health_error: str | None = None
    coherency: Series = field(default_factory=Series)
    lag: Series = field(default_factory=Series)
    errors: dict[str, deque[tuple[datetime, Level, str]]] = field(
        default_factory=lambda: {p: deque(maxlen=RECENT_ERRORS) for p in PARTS}
    )
    souls: list[SoulView] = field(default_factory=list)
    souls_error: str | None = None
    refreshes: int = 0
    alerts: list[Alert] = field(default_factory=list)


class WorkbenchApp(App[None]):
    """`kgents workbench`: the K-gent and the health of its memory, live."""

    TITLE = "kgents workbench"
    CSS_PATH = "workbench.tcss"
    MODES: ClassVar[dict[str, str | Callable[[], Screen[None]]]] = {
        "flux": FluxScreen,
        "loom": LoomScreen,
        "mri": MRIScreen,
        "garden": GardenScreen,
    }
    DEFAULT_MODE = "flux"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "switch_mode('flux')", "Flux"),
        Binding("l", "switch_mode('loom')", "Loom"),
        Binding("m", "switch_mode('mri')", "MRI"),
        Binding("g", "switch_mode('garden')", "Garden"),
        Binding("d", "detail", "Detail", show=False),  # the footer fits 80 columns; `?` lists these two
        Binding("r", "refresh_now", "Refresh", show=False),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        source: WorkbenchSource,
        *,
        interval: float = 1.0,
        glitch_s: float = 0.6,
        thresholds: Thresholds = DEFAULT_THRESHOLDS,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__()
        self.source = source
        self.interval = interval
        self.glitch_s = glitch_s
        self.thresholds = thresholds
        self.clock = clock
        self.io = LoopThread("workbench-io")
        self.state = BenchState()
        self.projections = ProjectionCache()
        self._levels: dict[str, Level] = {}
        self._timer: Timer | None = None
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0

    def on_mount(self) -> None:
        self.refresh_health()

    def on_unmount(self) -> None:
        with contextlib.suppress(Exception):  # closing is best effort: the process is leaving
            self.io.run(self.source.close(), timeout=5)
        self.io.stop()

    # refresh ----------------------------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="health")
    def refresh_health(self) -> None:
        """Collect once (off the UI), hand the result to the UI, then arm the next refresh."""
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            health, error = self._fetch_health()
            if self.state.refreshes % SOUL_EVERY == 0 or self.state.souls_error is not None:
                souls, souls_error = self._fetch_souls()
            else:
                souls, souls_error = self.state.souls, None
            self._to_ui(self._apply, health, error, souls, souls_error)
        finally:
            with self._lock:
                self.in_flight -= 1
            self._to_ui(self._rearm)

    def _fetch_health(self) -> tuple[TriadHealth | None, str | None]:
        try:
            return self.io.run(self.source.health(), IO_S), None
        except Exception as exc:
            return None, f"health unavailable: {describe_error(exc)}"

    def _fetch_souls(self) -> tuple[list[SoulView], str | None]:
        try:
            return self.io.run(self.source.souls(), IO_S), None
        except Exception as exc:
            return [], describe_error(exc)

    def _to_ui(self, callback: Callable[..., object], *args: object) -> None:
        if self.is_running and self._thread_id != threading.get_ident():
            with contextlib.suppress(RuntimeError):  # the app closed meanwhile
                self.call_from_thread(callback, *args)

    def _rearm(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(self.interval, self.refresh_health)

    def action_refresh_now(self) -> None:
        if self.in_flight == 0:
            if self._timer is not None:
                self._timer.stop()
            self.refresh_health()

    def _apply(
        self, health: TriadHealth | None, error: str | None, souls: list[SoulView], souls_error: str | None
    ) -> None:
        state = self.state
        state.refreshes += 1
        state.health, state.health_error = health, error
        state.souls, state.souls_error = souls, souls_error
        if health is not None:
            state.coherency.add(_float(health.part("resonance"), "coherency_with_truth"))
            state.lag.add(_float(health.part("synapse"), "lag_p95_ms"))
            for part in health.parts:
                if part.level.rank >= Level.STRAINED.rank:
                    state.errors[part.name].append((health.measured_at, part.level, part.error or part.reason))
            alerts = transitions(self._levels, health)
            self._levels = levels_of(health)
            state.alerts.extend(alerts)
        else:
            alerts = []
        self.redraw()
        if alerts:
            self._announce(alerts)

    def _announce(self, alerts: list[Alert]) -> None:
        """One notification per refresh (every part that turned, with its reason), and the glitch on each bar."""
        title, message = announcement(alerts)
        worst = max(alerts, key=lambda a: -1 if a.recovered else a.level.rank)
        if worst.recovered:
            severity: Literal["information", "warning", "error"] = "information"
        else:
            severity = "error" if worst.level is Level.CRITICAL else "warning"
        self.notify(message, title=title, severity=severity, timeout=NOTIFY_S)
        if self.glitch_s <= 0:
            return
        fresh = {a.part for a in alerts if not a.recovered}
        for bar in self.screen.query(HealthBar):
            if bar.part in fresh:
                bar.glitch(True)
                self.set_timer(self.glitch_s, lambda bar=bar: bar.glitch(False))

    def redraw(self) -> None:
        for screen in (self.screen, *self.screen_stack):
            redraw = getattr(screen, "redraw", None)
            if callable(redraw) and screen.is_mounted:
                redraw()

    # actions ----------------------------------------------------------------------------------------------------

    def on_part_selected(self, message: PartSelected) -> None:
        self.push_screen(DetailScreen(message.part))

    def action_detail(self) -> None:
        focused = self.focused
        if isinstance(focused, HealthBar):
            part = focused.part
        elif isinstance(focused, SynapseMetricsWidget):
            part = "synapse"
        else:
            part = self._worst_part()
        self.push_screen(DetailScreen(part))

    def _worst_part(self) -> str:
        health = self.state.health
        if health is None:
            return PARTS[0]
        return max(health.parts, key=lambda p: p.level.rank).name

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Flux", "Agent cards and the triad's health", lambda: self.switch_mode("flux"))
        yield SystemCommand("Loom", "Coherency and lag over time, drift events", lambda: self.switch_mode("loom"))
        yield SystemCommand("MRI", "The garden as a map of its embeddings", lambda: self.switch_mode("mri"))
        yield SystemCommand("Garden", "List, filter and inspect entries", lambda: self.switch_mode("garden"))
        for part in PARTS:
            yield SystemCommand(
                f"Detail: {part}",
                f"Every figure of {part}, its thresholds, recent errors",
                lambda part=part: self.push_screen(DetailScreen(part)),
            )
        yield SystemCommand("Refresh now", "Collect the triad's health again", self.action_refresh_now)
        yield SystemCommand("Help", "Keys and screens", self.action_help)


def _float(part: object, key: str) -> float | None:
    figures = getattr(part, "figures", None)
    value = None if figures is None else figures.get(key)
    return None if value is None else float(value)

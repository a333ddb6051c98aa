"""LoomScreen: the coherency and lag timeline from `time.drift.history`, with its drift events."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from kgents.health.collect import describe_error
from kgents.synapse.drift import DriftSample
from kgents.workbench.format import figure, percent
from kgents.workbench.source import IO_S
from kgents.workbench.widgets import Spark

if TYPE_CHECKING:
    from kgents.workbench.app import WorkbenchApp

HISTORY = 200
RELOAD_S = 5.0


def drift_event(before: DriftSample | None, sample: DriftSample) -> str:
    """What changed at `sample`: drift (coherency fell), mended (it rose), a backlog, or nothing."""
    if before is not None and before.coherency is not None and sample.coherency is not None:
        if sample.coherency < before.coherency:
            return "▼ drift"
        if sample.coherency > before.coherency:
            return "▲ mended"
    if (sample.stale or 0) + (sample.missing or 0) + (sample.orphaned or 0) > 0:
        return "≠ incoherent"
    if (sample.pending or 0) > 0:
        return "… backlog"
    return ""


class LoomScreen(Screen[None]):
    """Time: how coherent the index has been with the anchor, and how far behind the relay ran."""

    TITLE = "Loom"

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="loom"):
            yield Static("drift history: loading…", id="loom-status", markup=False)
            with Horizontal(id="loom-sparks"):
                with Vertical():
                    yield Static("coherency", id="loom-coherency-label", classes="spark-label")
                    yield Spark(id="loom-coherency")
                with Vertical():
                    yield Static("lag p95 ms", id="loom-lag-label", classes="spark-label")
                    yield Spark(id="loom-lag")
            yield DataTable(id="loom-events", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(
            "when (UTC)", "by", "coherency", "stale", "missing", "pending", "p95 ms", "event"
        )
        self._loaded_at = 0.0
        self.load()

    def on_screen_resume(self) -> None:
        self.load()

    def redraw(self) -> None:
        if time.monotonic() - self._loaded_at >= RELOAD_S:
            self.load()

    @property
    def bench(self) -> WorkbenchApp:
        from kgents.workbench.app import WorkbenchApp

        assert isinstance(self.app, WorkbenchApp)
        return self.app

    @work(thread=True, exclusive=True, group="loom")
    def load(self) -> None:
        self._loaded_at = time.monotonic()
        app = self.bench
        try:
            samples = app.io.run(app.source.drift(HISTORY), IO_S)
        except Exception as exc:
            app.call_from_thread(self._show_error, describe_error(exc))
            return
        app.call_from_thread(self._show, samples)

    def _show_error(self, error: str) -> None:
        self.query_one("#loom-status", Static).update(f"drift history unavailable: {error}")

    def _show(self, samples: list[DriftSample]) -> None:
        coherency = [s.coherency for s in samples if s.coherency is not None]
        lag = [s.lag_p95_ms for s in samples if s.lag_p95_ms is not None]
        self.query_one("#loom-coherency", Spark).show(coherency)
        lag_spark = self.query_one("#loom-lag", Spark)
        lag_spark.high = max([*lag, self.bench.thresholds.lag_p95_ms_below[0]])
        lag_spark.show(lag)
        self.query_one("#loom-coherency-label", Static).update(
            f"coherency now {percent(coherency[-1] if coherency else None)}"
            f" · lowest {percent(min(coherency, default=None))}"
        )
        self.query_one("#loom-lag-label", Static).update(f"lag p95 ms · highest {figure(max(lag, default=None))}")
        table = self.query_one(DataTable)
        table.clear()
        events = 0
        rows = []
        for i, s in enumerate(samples):
            event = drift_event(samples[i - 1] if i else None, s)
            events += bool(event)
            rows.append(
                (
                    f"{s.measured_at:%m-%d %H:%M:%S}",
                    s.source,
                    percent(s.coherency),
                    figure(s.stale),
                    figure(s.missing),
                    figure(s.pending),
                    figure(s.lag_p95_ms),
                    event,
                )
            )
        for row in reversed(rows):
            table.add_row(*row)
        status = f"{len(samples)} samples, {events} drift events, newest first"
        self.query_one("#loom-status", Static).update(
            status if samples else "no drift samples yet (status, ghost and a running relay record them)"
        )

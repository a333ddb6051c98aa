"""FluxScreen, the start screen: the agent cards above the infrastructure panel (triad health and Synapse's metrics)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from kgents.workbench.widgets import AgentCard, SynapseMetricsWidget, TriadHealthWidget, soul_lines_error

if TYPE_CHECKING:
    from kgents.workbench.app import WorkbenchApp


class FluxScreen(Screen[None]):
    """The start screen: who the agent is and how its memory is doing, refreshed every second."""

    TITLE = "Flux"

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="flux-body", can_focus=False):
            with Horizontal(id="agents"):
                yield Static("", id="agent-note", classes="agent-card", markup=False)
            with Horizontal(id="infrastructure-panel"):
                yield TriadHealthWidget(id="triad")
                yield SynapseMetricsWidget(id="synapse")
        yield Footer()

    @property
    def bench(self) -> WorkbenchApp:
        from kgents.workbench.app import WorkbenchApp

        assert isinstance(self.app, WorkbenchApp)
        return self.app

    def on_mount(self) -> None:
        self.redraw()

    def on_screen_resume(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        """Draw the app's latest state."""
        state = self.bench.state
        self.query_one(TriadHealthWidget).show(state.health, state.coherency.values, state.health_error)
        stack = None if state.health is None else state.health.part("synapse")
        floor_ms = self.bench.thresholds.lag_p95_ms_below[0]
        self.query_one(SynapseMetricsWidget).show(stack, state.lag.values, floor_ms)
        self._draw_agents()

    def _draw_agents(self) -> None:
        agents = self.query_one("#agents", Horizontal)
        state = self.bench.state
        note = self.query_one("#agent-note", Static)
        note.display = not state.souls
        note.update(soul_lines_error(state.souls_error or "reading the soul…"))
        cards = list(agents.query(AgentCard))
        for card in cards[len(state.souls) :]:
            card.remove()
        for i, soul in enumerate(state.souls):
            if i < len(cards):
                cards[i].show(soul)
            else:
                card = AgentCard("", classes="agent-card", markup=False)
                card.show(soul)
                agents.mount(card)

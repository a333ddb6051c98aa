"""A part's detail: its level and reason, every figure, the thresholds that judge it, its recent errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

from kgents.health.model import FIGURES
from kgents.workbench.format import TITLES, badge, figure, threshold_rows
from kgents.workbench.widgets import set_level_class

if TYPE_CHECKING:
    from kgents.workbench.app import WorkbenchApp


class DetailScreen(ModalScreen[None]):
    """One part, everything known about it; refreshed with the rest."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss", "Back")]

    def __init__(self, part: str) -> None:
        super().__init__()
        self.part = part

    def compose(self) -> ComposeResult:
        with Vertical(id="detail"):
            yield Static("", id="detail-head", markup=False)
            with VerticalScroll():
                yield Static("Figures", classes="section")
                yield DataTable(id="detail-figures", show_header=False, cursor_type="none")
                yield Static("Thresholds", classes="section")
                yield DataTable(id="detail-thresholds", show_header=False, cursor_type="none")
                yield Static("Recent errors", classes="section")
                yield Static("", id="detail-errors", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#detail-figures", DataTable).add_columns("figure", "value")
        self.query_one("#detail-thresholds", DataTable).add_columns("threshold", "THRIVING / HEALTHY / STRAINED …")
        self.redraw()

    def redraw(self) -> None:
        app = self.app
        from kgents.workbench.app import WorkbenchApp

        assert isinstance(app, WorkbenchApp)
        self._draw(app)

    def _draw(self, app: WorkbenchApp) -> None:
        state = app.state
        part = None if state.health is None else state.health.part(self.part)
        head = self.query_one("#detail-head", Static)
        name = TITLES.get(self.part, self.part)
        if part is None:
            head.update(f"{name}: {state.health_error or 'not measured yet'}")
        else:
            lines = [
                f"{name} · {badge(part.level)}",
                part.reason,
                f"backend {part.backend} · probe {part.duration_ms:.1f} ms"
                + ("" if part.configured else " · not configured (in-process default)"),
            ]
            if part.error:
                lines.append(f"error: {part.error}")
            head.update("\n".join(lines))
        set_level_class(head, None if part is None else part.level)
        figures = self.query_one("#detail-figures", DataTable)
        figures.clear()
        known = {} if part is None else part.figures
        for key in FIGURES.get(self.part, tuple(known)):
            figures.add_row(key, figure(known.get(key)))
        table = self.query_one("#detail-thresholds", DataTable)
        table.clear()
        for key, value in threshold_rows(self.part, app.thresholds):
            table.add_row(key, value)
        errors = list(state.errors.get(self.part, ()))[-8:]
        text = "\n".join(f"{at:%H:%M:%S} {lv.value:<9} {why}" for at, lv, why in reversed(errors))
        self.query_one("#detail-errors", Static).update(text or "none since the workbench opened")

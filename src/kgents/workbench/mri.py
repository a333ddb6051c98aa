"""MRIScreen: the garden as a 2-D map of its embeddings (PCA off the UI thread, cached), coloured by lifecycle,
with a search that highlights what it recalls."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static

from kgents.garden.filters import EntryFilter
from kgents.garden.model import GardenEntry, Lifecycle
from kgents.health.collect import describe_error
from kgents.workbench.projection import key_of, pca_2d, place
from kgents.workbench.source import IO_S

if TYPE_CHECKING:
    from kgents.workbench.app import WorkbenchApp

COLOURS = {
    Lifecycle.SEED: "dark_khaki",
    Lifecycle.SAPLING: "green3",
    Lifecycle.TREE: "dodger_blue2",
    Lifecycle.FLOWER: "magenta",
    Lifecycle.COMPOST: "grey50",
}
DOT, HIT, MANY = "●", "◉", "◆"
RECALL_LIMIT = 10


def legend() -> Text:
    text = Text()
    for stage, colour in COLOURS.items():
        text.append(f"{DOT} {stage.value.lower()}  ", style=colour)
    text.append(f"{HIT} search hit", style="bold reverse")
    return text


def draw_map(
    points: np.ndarray[Any, np.dtype[np.float64]],
    entries: list[GardenEntry],
    hits: set[str],
    width: int,
    height: int,
) -> Text:
    """The map as text: a dot per entry in its lifecycle's colour, hits reversed."""
    width, height = max(4, width), max(2, height)
    cells = place(points, width, height)
    text = Text()
    for row in range(height):
        for col in range(width):
            cell = cells.get((col, row))
            if cell is None:
                text.append(" ")
                continue
            entry = entries[cell.entry]
            colour = COLOURS.get(entry.lifecycle, "default")
            if str(entry.id) in hits:
                text.append(HIT, style=f"bold reverse {colour}")
            else:
                text.append(MANY if cell.count > 1 else DOT, style=colour)
        if row < height - 1:
            text.append("\n")
    return text


class MRIScreen(Screen[None]):
    """Inside the memory: entries that mean alike sit together."""

    TITLE = "MRI"
    AUTO_FOCUS = ""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "search", "Search", key_display="/"),
        Binding("escape", "leave_search", "Leave search", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="mri"):
            yield Input(placeholder="search the garden (enter)", id="mri-search")
            yield Static("mapping the garden…", id="mri-status", markup=False)
            yield Static("", id="mri-map")
            yield Static(legend(), id="mri-legend")
        yield Footer()

    def on_mount(self) -> None:
        self.entries: list[GardenEntry] = []
        self.points: np.ndarray[Any, np.dtype[np.float64]] = np.zeros((0, 2))
        self.hits: set[str] = set()
        self.load()

    @property
    def bench(self) -> WorkbenchApp:
        from kgents.workbench.app import WorkbenchApp

        assert isinstance(self.app, WorkbenchApp)
        return self.app

    def action_search(self) -> None:
        self.query_one("#mri-search", Input).focus()

    def action_leave_search(self) -> None:
        self.set_focus(None)

    @work(thread=True, exclusive=True, group="mri")
    def load(self) -> None:
        """Entries, their vectors and the projection, all off the UI thread; an unchanged garden is not redone."""
        app = self.bench
        try:
            entries = app.io.run(app.source.entries(EntryFilter(include_compost=True)), IO_S)
            key = key_of([str(e.id) for e in entries], [e.version for e in entries])
            points = app.projections.get(key)
            if points is None:
                vectors = app.io.run(app.source.vectors(entries), IO_S)
                points = pca_2d(vectors)
                app.projections.put(key, points)
        except Exception as exc:
            app.call_from_thread(self._status, f"the garden cannot be mapped: {describe_error(exc)}")
            return
        app.call_from_thread(self._loaded, entries, points)

    def _loaded(self, entries: list[GardenEntry], points: np.ndarray[Any, np.dtype[np.float64]]) -> None:
        self.entries, self.points = entries, points
        self._status(f"{len(entries)} entries · first two principal components of their embeddings")
        self.draw()

    def _status(self, text: str) -> None:
        self.query_one("#mri-status", Static).update(text)

    def on_resize(self) -> None:
        self.draw()

    def draw(self) -> None:
        area = self.query_one("#mri-map", Static)
        width, height = area.size.width or 60, area.size.height or 12
        area.update(draw_map(self.points, self.entries, self.hits, width, height))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        query = event.value.strip()
        if not query:
            self.hits = set()
            self.draw()
            return
        self.search(query)
        self.set_focus(None)

    @work(thread=True, exclusive=True, group="mri-search")
    def search(self, query: str) -> None:
        app = self.bench
        try:
            ids = app.io.run(app.source.recall(query, RECALL_LIMIT), IO_S)
        except Exception as exc:
            app.call_from_thread(self._status, f"search failed: {describe_error(exc)}")
            return
        app.call_from_thread(self._found, query, ids)

    def _found(self, query: str, ids: list[str]) -> None:
        self.hits = set(ids)
        by_id = {str(e.id): e for e in self.entries}
        best = by_id.get(ids[0]).content[:50] if ids and ids[0] in by_id else "-"  # type: ignore[union-attr]
        self._status(f"{len(ids)} hits for {query!r:.30} · best: {best}")
        self.draw()

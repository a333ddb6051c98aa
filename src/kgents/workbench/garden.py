"""The garden browser: list entries, filter them (`is:seed type:value tag:x words`), inspect one and its history."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from kgents.errors import ValidationError
from kgents.garden.filters import EntryFilter
from kgents.garden.model import EntryType, GardenEntry, Lifecycle
from kgents.garden.records import AuditRecord
from kgents.health.collect import describe_error
from kgents.workbench.source import IO_S

if TYPE_CHECKING:
    from kgents.workbench.app import WorkbenchApp


def parse_filter(text: str) -> EntryFilter:
    """`is:seed type:value tag:x some words` as an EntryFilter (ValidationError naming a bad word)."""
    stages: list[Lifecycle | str] = []
    types: list[EntryType | str] = []
    tags: list[str] = []
    words: list[str] = []
    for word in text.split():
        key, sep, value = word.partition(":")
        if sep and key.lower() == "is":
            stages.append(value.upper())
        elif sep and key.lower() == "type":
            types.append(value.upper())
        elif sep and key.lower() == "tag":
            tags.append(value)
        else:
            words.append(word)
    return EntryFilter(
        lifecycles=tuple(stages),  # type: ignore[arg-type]
        entry_types=tuple(types),  # type: ignore[arg-type]
        tags=tuple(tags),
        text=" ".join(words) or None,
        include_compost=True,
    )


def describe_entry(entry: GardenEntry, history: list[AuditRecord]) -> str:
    lines = [
        f"{entry.id}",
        f"{entry.entry_type.value} · {entry.lifecycle.value} · confidence {entry.confidence:.2f} · v{entry.version}",
        f"planted {entry.planted_at:%Y-%m-%d %H:%M}"
        + (f" · nurtured {entry.last_nurtured:%Y-%m-%d %H:%M}" if entry.last_nurtured else ""),
        f"tags {', '.join(entry.tags) or '-'}",
        "",
        entry.content,
        "",
        f"history ({len(history)} changes)",
    ]
    for record in history:
        changed = ", ".join(record.changed_fields()[:5])
        lines.append(f"  v{record.version} {record.operation.value} {record.changed_at:%m-%d %H:%M:%S} {changed}")
    return "\n".join(lines)


class GardenScreen(Screen[None]):
    """The PersonaGarden, entry by entry."""

    TITLE = "Garden"
    AUTO_FOCUS = "#garden-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("escape", "leave_filter", "Leave filter", show=False),
    ]

    def action_filter(self) -> None:
        self.query_one("#garden-filter", Input).focus()

    def action_leave_filter(self) -> None:
        self.query_one(DataTable).focus()

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="garden"):
            yield Input(placeholder="filter: is:seed type:value tag:x words (enter)", id="garden-filter")
            yield Static("loading…", id="garden-status", markup=False)
            with Horizontal():
                yield DataTable(id="garden-table", cursor_type="row", zebra_stripes=True)
                with VerticalScroll(id="garden-side"):
                    yield Static("select an entry", id="garden-entry", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("id", "type", "stage", "conf", "content")
        self.entries: dict[str, GardenEntry] = {}
        self.load(EntryFilter(include_compost=True))

    @property
    def bench(self) -> WorkbenchApp:
        from kgents.workbench.app import WorkbenchApp

        assert isinstance(self.app, WorkbenchApp)
        return self.app

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            chosen = parse_filter(event.value)
        except ValidationError as exc:
            self.query_one("#garden-status", Static).update(str(exc))
            return
        self.load(chosen)
        self.query_one(DataTable).focus()

    @work(thread=True, exclusive=True, group="garden")
    def load(self, filters: EntryFilter) -> None:
        app = self.bench
        try:
            entries = app.io.run(app.source.entries(filters), IO_S)
        except Exception as exc:
            app.call_from_thread(self._status, f"the garden cannot be read: {describe_error(exc)}")
            return
        app.call_from_thread(self._show, entries)

    def _status(self, text: str) -> None:
        self.query_one("#garden-status", Static).update(text)

    def _show(self, entries: list[GardenEntry]) -> None:
        table = self.query_one(DataTable)
        table.clear()
        self.entries = {str(e.id): e for e in entries}
        for e in entries:
            short = e.content if len(e.content) <= 60 else e.content[:59] + "…"
            table.add_row(
                str(e.id)[:8],
                e.entry_type.value.lower(),
                e.lifecycle.value.lower(),
                f"{e.confidence:.2f}",
                short,
                key=str(e.id),
            )
        self._status(f"{len(entries)} entries · enter or click one for its detail and history")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.inspect(event.row_key.value)

    @work(thread=True, exclusive=True, group="garden-entry")
    def inspect(self, entry_id: str) -> None:
        app = self.bench
        entry = self.entries.get(entry_id)
        if entry is None:
            return
        try:
            history = app.io.run(app.source.history(entry_id), IO_S)
        except Exception as exc:
            app.call_from_thread(self._side, f"{entry.content}\n\nhistory unavailable: {describe_error(exc)}")
            return
        app.call_from_thread(self._side, describe_entry(entry, history))

    def _side(self, text: str) -> None:
        self.query_one("#garden-entry", Static).update(text)

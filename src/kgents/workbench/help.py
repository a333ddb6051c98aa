"""The help screen: the screens and their keys."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Markdown

HELP = """\
# kgents workbench

| key | what |
| --- | --- |
| `f` | **Flux**: agent cards, triad health, Synapse |
| `l` | **Loom**: coherency and lag over time, drift events |
| `m` | **MRI**: the garden as a map of its embeddings; `/` searches |
| `g` | **Garden**: list, filter (`is:seed type:value tag:x words`), inspect |
| `d` / `enter` / click | the detail of the focused (or worst) part |
| `tab` | move between bars and widgets |
| `r` | refresh now (otherwise every second) |
| `ctrl+p` | command palette (screens, details, theme) |
| `escape` | back · `q` quit |

A part turning **DEGRADED** or **CRITICAL** flickers, keeps its colour and badge, and is announced with its
reason; recovery is announced too. Levels use the theme's success / warning / error colours.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Back"),
        Binding("question_mark", "dismiss", "Back", show=False),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(HELP)
        yield Footer()

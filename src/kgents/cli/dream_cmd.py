"""`kgents dream` and the dream the chat runs when it ends: a line of what it did, progress while it works (a rich
bar on stderr when stderr is a terminal, else a count line every few seconds, so a short dream prints none)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from kgents.cli.context import console, err_console, print_json, run, state
from kgents.hypnagogia.cycle import DreamResult
from kgents.hypnagogia.run import dream as dream_once
from kgents.hypnagogia.run import dream_until_done
from kgents.memory.api import MemoryAPI

COUNT_EVERY_S = 5.0
"""How often a dream whose stderr is not a terminal says how far it got."""


def describe_dream(result: DreamResult) -> str:
    if result.busy:
        return "dream: another dream of this persona is running; nothing done"
    verb = "would" if result.dry_run else "did"
    shifts = ", ".join(f"{a} {d:+.2f}" for a, d in result.shifts.items()) or "none"
    left = f"; {result.remaining} changed entries left for the next dream" if result.remaining else ""
    return (
        f"dream ({verb}): learned {result.learned}, nurtured {result.nurtured}, promoted {len(result.promoted)},"
        f" superseded {result.superseded}, decayed {result.decayed}, composted {len(result.composted)};"
        f" eigenvector shifts: {shifts}; {'would write' if result.dry_run else 'wrote'} {result.written}"
        f" entries{left}"
    )


class DreamProgress:
    """The callbacks a dream reports to: entries weighed of this dream, and rounds of a long backlog."""

    def __init__(self, bar: Progress | None) -> None:
        self._bar = bar
        self._task = None if bar is None else bar.add_task("dreaming: weighing what changed", total=None)
        self._told = time.monotonic()
        self._round = ""

    def weighed(self, done: int, total: int) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=done, total=total)
            return
        if time.monotonic() - self._told >= COUNT_EVERY_S or (done == total and self._round):
            self._told = time.monotonic()
            err_console.print(f"dreaming: {done} of {total} changed entries weighed{self._round}", soft_wrap=True)

    def rounds(self, done: int, left: int) -> None:
        self._round = f" (dream {done + 1}; {left} more waiting)"
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, description=f"dreaming again: {left} changed entries waiting", completed=0)
        else:
            err_console.print(f"dreaming again: {left} changed entries waiting", soft_wrap=True)


@contextlib.contextmanager
def dream_progress() -> Iterator[DreamProgress]:
    if not err_console.is_terminal:
        yield DreamProgress(None)
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        yield DreamProgress(bar)


async def dream_with_progress(memory: MemoryAPI, *, dry_run: bool = False) -> DreamResult:
    """A dry run: what the next dream would do. Otherwise dream until nothing changed is left, showing progress."""
    with dream_progress() as shown:
        if dry_run:
            return await dream_once(memory, dry_run=True, progress=shown.weighed)
        return await dream_until_done(memory, progress=shown.weighed, rounds=shown.rounds)


def dream(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what the next dream would do; change nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Consolidate what changed since the last dream (merge entries that say the same thing), decay stale entries
    and nudge the soul's eigenvectors. Through the home's server when one runs."""
    from kgents.memory.factory import open_memory

    settings = state(ctx).settings()

    async def work() -> DreamResult:
        memory = await open_memory(settings)
        try:
            return await dream_with_progress(memory, dry_run=dry_run)
        finally:
            await memory.close()

    result = run(work)
    if as_json:
        print_json(result.to_dict())
    else:
        console.print(describe_dream(result), soft_wrap=True)

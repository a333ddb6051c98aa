"""Long work shown while it runs, on stderr: a rich progress bar when stderr is a terminal, a count line every few
seconds when it is not (a log, a pipe, CI). Work done within `QUIET_S` shows nothing at all.

    async with LongWork("importing", total=len(lines), unit="lines") as shown:
        ...
        shown.update(done)

`update` is cheap and thread-safe (work in a thread may call it); the display runs beside the work, so a phase
that cannot count (one database transaction) still shows that it is alive and for how long.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

from kgents.cli.context import make_console

T = TypeVar("T")

QUIET_S = 1.0
"""Work shorter than this shows nothing."""
LINE_EVERY_S = 2.0
"""Not a terminal: a count line at most this often."""
TICK_S = 0.1


class LongWork:
    """One piece of long work on stderr (see the module)."""

    def __init__(self, what: str, *, total: int | None = None, unit: str = "") -> None:
        self.what = what
        self.total = total
        self.unit = unit
        self.done = 0
        self._began = 0.0
        self._task: asyncio.Task[None] | None = None
        self._bar: RichProgress | None = None
        self._lines = 0

    def update(self, done: int, total: int | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._began

    async def __aenter__(self) -> LongWork:
        self._began = time.monotonic()
        self._task = asyncio.create_task(self._show())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._bar is not None:
            self._bar.stop()
        elif self._lines and kind is None:
            self._line(final=True)

    async def _show(self) -> None:
        await asyncio.sleep(QUIET_S)
        if sys.stderr.isatty():
            self._bar = _bar(self.total)
            task = self._bar.add_task(self._label(), total=self.total)
            self._bar.start()
            while True:
                self._bar.update(task, completed=self.done, total=self.total, description=self._label())
                await asyncio.sleep(TICK_S)
        while True:
            self._line()
            await asyncio.sleep(LINE_EVERY_S)

    def _label(self) -> str:
        if self.total is None and self.done:
            return f"{self.what}: {self.done:,} {self.unit}".rstrip()
        return self.what

    def _line(self, *, final: bool = False) -> None:
        state = f"done in {self.elapsed:.1f} s" if final else f"{self.elapsed:.0f} s"
        if self.total is None and not self.done:  # a phase that cannot count: that it is alive, and how long
            sys.stderr.write(f"kgents: {self.what} ({state})\n")
        else:
            count = f"{self.done:,}" if self.total is None else f"{self.done:,} of {self.total:,}"
            unit = f" {self.unit}" if self.unit else ""
            sys.stderr.write(f"kgents: {self.what}: {count}{unit} ({state})\n")
        sys.stderr.flush()
        self._lines += 1


def _bar(total: int | None) -> RichProgress:
    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns += [BarColumn(), MofNCompleteColumn()]
    return RichProgress(*columns, TimeElapsedColumn(), console=make_console(sys.stderr), transient=True)


def counted(items: Iterable[T], shown: LongWork, every: int = 256) -> Iterator[T]:
    """`items`, telling `shown` how many went by (every `every`, and at the end)."""
    done = 0
    for done, item in enumerate(items, start=1):
        if done % every == 0:
            shown.update(done)
        yield item
    shown.update(done)

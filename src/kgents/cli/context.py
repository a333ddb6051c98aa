"""What every command shares: the settings from global flags, and running async work with one-line errors."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypeVar

import typer
from rich.console import Console, ConsoleDimensions
from typer._click.exceptions import UsageError

from kgents.config import Settings, check_persona
from kgents.errors import ConfigError, NotFoundError, ValidationError

T = TypeVar("T")

PIPED_WIDTH = 1_000_000
"""The width a console takes when its stream is not a terminal: wide enough that nothing is ever wrapped (a
table takes its natural width, a line its own length)."""


class CliConsole(Console):
    """The CLI's console: rich as usual on a terminal (colour, the terminal's width); on anything else (a pipe, a
    file, a test's capture) nothing is ever wrapped, lines nor table rows. Which it is, is asked of the stream at
    each print, so a console made at import follows a redirection made later."""

    @property
    def size(self) -> ConsoleDimensions:
        found = Console.size.fget(self)  # type: ignore[attr-defined]
        return found if self.is_terminal else ConsoleDimensions(PIPED_WIDTH, found.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]

    @property
    def soft_wrap(self) -> bool:
        return self._soft_wrap or not self.is_terminal

    @soft_wrap.setter
    def soft_wrap(self, value: bool) -> None:
        self._soft_wrap = value


def make_console(stream: TextIO | None = None, *, stderr: bool = False) -> Console:
    """The one console factory of the CLI (`console`, `err_console`, progress displays): a `CliConsole` on
    `stream`, else on whatever sys.stdout (sys.stderr with `stderr`) is when it prints."""
    return CliConsole(file=stream, stderr=stderr, highlight=False)


console = make_console()
err_console = make_console(stderr=True)


@dataclass
class CliState:
    """Global flags, resolved into Settings lazily so `kgents --help` never touches configuration."""

    overrides: dict[str, Any]

    def settings(self) -> Settings:
        return Settings.from_env(**self.overrides)


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):
        obj = CliState({})
        ctx.find_root().obj = obj
    return obj


def persona_flag(value: str | None) -> str | None:
    """The callback of every `--persona` flag: a name that cannot be a persona is a usage error (exit 64), as any
    bad flag value is (a bad KGENTS_PERSONA is a setting's: exit 78)."""
    if value is None:
        return None
    try:
        return check_persona(value)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--persona") from None


def confirmed(yes: bool, consequence: str) -> None:
    """The one check of a destructive command's `--yes`: without it, a usage error (exit 64) saying why."""
    if not yes:
        raise UsageError(f"{consequence}; add --yes to confirm")


def run(work: Callable[[], Awaitable[T]]) -> T:
    """Run async work from a command; errors propagate to `kgents.cli.app.main`, which reports them."""
    return asyncio.run(_call(work))


async def _call(work: Callable[[], Awaitable[T]]) -> T:
    return await work()


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def read_input(source: Path | str) -> str:
    """The text of an input file, or of stdin for `-`. A file that is missing or cannot be read is NotFoundError
    (exit 66, EX_NOINPUT); bytes that are not UTF-8 are a ValidationError naming the first bad one's offset and
    line."""
    stdin = str(source) == "-"
    try:
        if not stdin:
            data = Path(source).read_bytes()
        elif (buffer := getattr(sys.stdin, "buffer", None)) is not None:
            data = buffer.read()
        else:  # a text stream put in place of stdin (tests, embedding callers)
            data = sys.stdin.read().encode("utf-8", "surrogateescape")
    except OSError as exc:
        raise NotFoundError(f"cannot read {source}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ValidationError(
            f"{'stdin' if stdin else source} is not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start}"
            f" (line {line})"
        ) from None

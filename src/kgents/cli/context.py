"""What every command shares: the settings from global flags, and running async work with one-line errors."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import typer
from rich.console import Console

from kgents.cli.exit_codes import ExitCode, exit_code_for
from kgents.config import Settings
from kgents.errors import KgentsError

T = TypeVar("T")

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


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


def fail(message: str, code: ExitCode) -> typer.Exit:
    """Print one plain line on stderr and return the Exit to raise."""
    err_console.print(f"kgents: {message}", markup=False, soft_wrap=True)
    return typer.Exit(int(code))


def run(work: Callable[[], Awaitable[T]]) -> T:
    """Run async work; any error becomes one line on stderr and its exit code (never a traceback)."""
    try:
        return asyncio.run(_call(work))
    except KgentsError as exc:
        raise fail(str(exc), exit_code_for(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted", ExitCode.INTERRUPTED) from None
    except Exception as exc:
        if os.environ.get("KGENTS_DEBUG"):
            raise
        raise fail(
            f"internal error: {type(exc).__name__}: {exc} (set KGENTS_DEBUG=1 for the traceback)",
            exit_code_for(exc),
        ) from None


async def _call(work: Callable[[], Awaitable[T]]) -> T:
    return await work()


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")

"""What every command shares: the settings from global flags, and running async work with one-line errors."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import typer
from rich.console import Console

from kgents.config import Settings

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


def run(work: Callable[[], Awaitable[T]]) -> T:
    """Run async work from a command; errors propagate to `kgents.cli.app.main`, which reports them."""
    return asyncio.run(_call(work))


async def _call(work: Callable[[], Awaitable[T]]) -> T:
    return await work()


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")

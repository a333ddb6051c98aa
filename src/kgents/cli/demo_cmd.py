"""`kgents demo`: the seed's scenario end to end (kgents.kgent.demo), then its metrics table from this run.

It runs in a throwaway home by default, so it never touches the user's own memory; with `--home` (or the global
one) it runs there, and PostgreSQL / Redis / Qdrant URLs in the settings are used when set. Either way it plays a
fresh persona of its own. Exits non-zero when any claim fails.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kgents.cli.context import console, print_json, run, state
from kgents.cli.exit_codes import ExitCode
from kgents.config import Settings
from kgents.kgent.demo import DemoRun, scenario


def metrics_table(result: DemoRun) -> Table:
    table = Table(title="Metrics measured in this run")
    for column in ("Metric", "Before Triad", "After Triad", "Claim", "Holds"):
        table.add_column(column)
    for m in result.metrics:
        table.add_row(m.name, m.before, m.after, m.claim, "[green]yes[/]" if m.ok else "[red]NO[/]")
    return table


def demo(
    ctx: typer.Context,
    home: Annotated[Path | None, typer.Option("--home", help="Run in this home instead of a throwaway one.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Play the K-gent's whole scenario and prove each claim with a figure measured in this run."""
    cli = state(ctx)
    chosen = home or cli.overrides.get("home")
    scratch = None if chosen else Path(tempfile.mkdtemp(prefix="kgents-demo-"))
    settings: Settings = cli.settings()
    target: Path = chosen or scratch  # type: ignore[assignment]
    settings = replace(settings, home=target, persona=f"demo-{uuid.uuid4().hex[:8]}")
    say = (lambda _: None) if as_json else (lambda text: console.print(text, markup=False, soft_wrap=True))
    try:
        result = run(lambda: scenario(settings, say))
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    if as_json:
        print_json(result.to_dict())
    else:
        console.print(metrics_table(result))
        console.print("every claim holds" if result.ok else "some claims do not hold", soft_wrap=True)
    if not result.ok:
        raise typer.Exit(ExitCode.CRITICAL)

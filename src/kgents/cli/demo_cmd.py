"""`kgents demo`: the seed's scenario end to end (kgents.kgent.demo), then its metrics table from this run.

It plays in stores of its own (kgents.kgent.demo_sandbox): a throwaway home, and on the PostgreSQL / Redis /
Qdrant in the settings its own schema, key prefix and collections, all dropped on every way out, so the user's
memory is never touched (the global `--home` names that memory, so the demo does not play there). `demo --home`
names a new or empty home that is kept, with what the demo made on the servers, for a look. Exits non-zero when
any claim fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kgents.cli.context import console, print_json, run, state
from kgents.cli.exit_codes import ExitCode
from kgents.kgent.demo import DemoRun, scenario
from kgents.kgent.demo_sandbox import open_sandbox, tear_down


def metrics_table(result: DemoRun) -> Table:
    table = Table(title="Metrics measured in this run")
    for column in ("Metric", "Before Triad", "After Triad", "Claim", "Holds"):
        table.add_column(column)
    for m in result.metrics:
        table.add_row(m.name, m.before, m.after, m.claim, "[green]yes[/]" if m.ok else "[red]NO[/]")
    return table


def demo(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option("--home", help="Run in this new or empty home and keep it (with what it made on the servers)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Play the K-gent's whole scenario and prove each claim with a figure measured in this run."""
    cli = state(ctx)
    sandbox = open_sandbox(cli.settings(), home)  # the global --home names the user's memory: not the demo's

    def say(text: str) -> None:
        if not as_json:
            console.print(text, markup=False, soft_wrap=True)

    try:
        say(sandbox.describe())
        result = run(lambda: scenario(sandbox.settings, say))
    finally:
        run(lambda: tear_down(sandbox))
    if as_json:
        print_json(result.to_dict() | {"sandbox": sandbox.to_dict()})
    else:
        console.print(metrics_table(result))
        console.print("every claim holds" if result.ok else "some claims do not hold", soft_wrap=True)
    if not result.ok:
        raise typer.Exit(ExitCode.CRITICAL)

"""`kgents status`: the triad's health, read through AGENTESE (`self.vitals.triad.health`).

`--triad` shows a section per part, `--json` the documented schema, `--watch` refreshes in place until Ctrl-C.
The exit code is the verdict's (`exit_code_for_level`): 0 healthy or better, 1 strained or degraded, 2 critical,
3 unknown.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Annotated

import typer
from rich.live import Live

from kgents.agentese.invoke import read_health
from kgents.agentese.resolver import AgentContext
from kgents.cli.context import console, print_json, run, state
from kgents.cli.exit_codes import exit_code_for_level
from kgents.cli.health_render import render_summary, render_triad
from kgents.config import Settings
from kgents.health.ghost import status_line
from kgents.health.levels import DEFAULT_THRESHOLDS, Thresholds
from kgents.health.model import TriadHealth

TimeoutOpt = Annotated[
    float,
    typer.Option("--timeout", min=0.1, max=120.0, help="Seconds each part's probe may take (then it is CRITICAL)."),
]


def thresholds_with(timeout: float) -> Thresholds:
    return replace(DEFAULT_THRESHOLDS, probe_timeout_s=timeout)


def collect(settings: Settings, timeout: float) -> TriadHealth:
    ctx = AgentContext(settings, thresholds_with(timeout), record="status")
    return run(lambda: read_health(ctx))


def status(
    ctx: typer.Context,
    triad: Annotated[bool, typer.Option("--triad", help="A section per part (durability, resonance, …).")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="The documented JSON (schema_version, pass/warn/fail).")
    ] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Refresh in place until Ctrl-C.")] = False,
    interval: Annotated[float, typer.Option("--interval", min=0.5, help="Seconds between refreshes.")] = 2.0,
    count: Annotated[int | None, typer.Option("--count", min=1, help="With --watch: stop after N refreshes.")] = None,
    timeout: TimeoutOpt = DEFAULT_THRESHOLDS.probe_timeout_s,
) -> None:
    """The triad's health and the verdict with its reason (exit 0 healthy, 1 strained/degraded, 2 critical,
    3 unknown)."""
    settings = state(ctx).settings()
    if watch:
        health = _watch(settings, timeout, interval, count)
    else:
        health = collect(settings, timeout)
        if as_json:
            print_json(health.to_dict())
        elif triad:
            console.print(render_triad(health), soft_wrap=True)
        else:
            console.print(render_summary(health, status_line(health)), soft_wrap=True)
    raise typer.Exit(int(exit_code_for_level(health.level)))


def _watch(settings: Settings, timeout: float, interval: float, count: int | None) -> TriadHealth:
    health = collect(settings, timeout)
    shown = 1
    try:
        with Live(render_triad(health), console=console, auto_refresh=False, transient=False) as live:
            while count is None or shown < count:
                time.sleep(interval)
                health = collect(settings, timeout)
                live.update(render_triad(health), refresh=True)
                shown += 1
    except KeyboardInterrupt:  # Ctrl-C: the normal way to stop watching; the last verdict is the exit code
        pass
    return health

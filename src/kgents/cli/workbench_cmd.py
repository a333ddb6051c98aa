"""`kgents workbench`: the live Textual dashboard of the K-gent and its memory (kgents.workbench)."""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum
from typing import Annotated

import typer

from kgents.cli.context import state
from kgents.health.levels import DEFAULT_THRESHOLDS


class Demo(StrEnum):
    healthy = "healthy"
    degraded = "degraded"


def workbench(
    ctx: typer.Context,
    interval: Annotated[float, typer.Option("--interval", min=0.2, max=60.0, help="Seconds between refreshes.")] = 1.0,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, max=60.0, help="Seconds each part's probe may take.")
    ] = 2.0,
    demo: Annotated[
        Demo | None, typer.Option("--demo", help="Show the seeded demo data set instead of this memory.")
    ] = None,
) -> None:
    """A live terminal dashboard: agent cards, the triad's health, drift over time, the garden's map."""
    from kgents.workbench.app import WorkbenchApp
    from kgents.workbench.demo import FixedSource, degraded, healthy
    from kgents.workbench.source import LiveSource, WorkbenchSource

    thresholds = replace(DEFAULT_THRESHOLDS, probe_timeout_s=timeout)
    source: WorkbenchSource
    if demo is None:
        source = LiveSource(state(ctx).settings(), thresholds)
    else:
        source = FixedSource([healthy() if demo is Demo.healthy else degraded()])
    WorkbenchApp(source, interval=interval, thresholds=thresholds).run()

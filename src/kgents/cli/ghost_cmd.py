"""`kgents ghost`: write the triad's health under KGENTS_HOME/ghost/ once, or every --interval with --daemon."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Annotated

import typer

from kgents.agentese.invoke import read_health
from kgents.agentese.resolver import AgentContext
from kgents.cli.context import console, err_console, run, state
from kgents.cli.exit_codes import exit_code_for_level
from kgents.cli.status_cmd import TimeoutOpt, thresholds_with
from kgents.config import Settings
from kgents.health.ghost import DEFAULT_INTERVAL_S, ghost_dir, write_ghost
from kgents.health.levels import DEFAULT_THRESHOLDS
from kgents.health.model import Level


def ghost(
    ctx: typer.Context,
    daemon: Annotated[
        bool, typer.Option("--daemon", help="Keep writing every --interval until SIGTERM / Ctrl-C.")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=1.0, help="Seconds between writes (the files stay valid 3 intervals).")
    ] = DEFAULT_INTERVAL_S,
    timeout: TimeoutOpt = DEFAULT_THRESHOLDS.probe_timeout_s,
) -> None:
    """Write triad_health.json, health.status and (on a move into or out of DEGRADED / CRITICAL) a line of
    thought_stream.md under KGENTS_HOME/ghost/."""
    settings = state(ctx).settings()
    agent = AgentContext(settings, thresholds_with(timeout), record="ghost")
    if not daemon:
        level = run(lambda: _once(agent, interval))
        console.print(f"{status_line_text(settings)}", markup=False)
        raise typer.Exit(int(exit_code_for_level(level)))
    err_console.print(
        f"kgents: ghost writing {ghost_dir(settings.home)} every {interval:g} s; Ctrl-C to stop", markup=False
    )
    run(lambda: _daemon(agent, interval))


def status_line_text(settings: Settings) -> str:
    return (ghost_dir(settings.home) / "health.status").read_text("utf-8").strip()


async def _once(agent: AgentContext, interval: float) -> Level:
    health = await read_health(agent)
    await asyncio.to_thread(write_ghost, agent.settings.home, health, interval)
    return health.level


async def _daemon(agent: AgentContext, interval: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    while not stop.is_set():
        health = await read_health(agent)
        await asyncio.to_thread(write_ghost, agent.settings.home, health, interval)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)

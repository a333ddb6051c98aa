"""`kgents synapse alive`: the liveness probe of a relay container (exit 0 while a relay on this host beats)."""

from __future__ import annotations

import socket
from typing import Annotated

import typer

from kgents.cli.context import console, run, state
from kgents.cli.exit_codes import ExitCode
from kgents.clock import utcnow
from kgents.garden.store import open_store
from kgents.synapse.queue import queue_on


def alive(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Whose relay (default: this host, e.g. the pod's own name).")
    ] = None,
) -> None:
    """Exit 0 if a relay on this host beats (its heartbeat younger than its interval + 2 beats), else 2: the
    liveness probe of a relay container. Reads only the anchor, never the index."""
    from kgents.synapse.policy import is_alive

    settings = state(ctx).settings()
    who = host or socket.gethostname()

    async def ages() -> list[float]:
        store = await open_store(settings)
        try:
            now = utcnow()
            beats = await queue_on(store.anchor).heartbeats()
            return [
                age
                for hb in beats
                if hb.host == who and is_alive(age := (now - hb.last_beat).total_seconds(), hb.interval_s)
            ]
        finally:
            await store.close()

    found = run(ages)
    if not found:
        console.print(f"no relay on {who} has beaten recently", markup=False)
        raise typer.Exit(ExitCode.CRITICAL)
    console.print(f"relay on {who} alive (last beat {min(found):.1f} s ago)", markup=False)

"""`kgents metrics serve`: the triad's health as Prometheus metrics over HTTP (loopback by default)."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from typing import Annotated

import typer

from kgents.agentese.invoke import read_health
from kgents.agentese.resolver import AgentContext
from kgents.cli.context import err_console, state
from kgents.cli.status_cmd import TimeoutOpt, thresholds_with
from kgents.health.levels import DEFAULT_THRESHOLDS
from kgents.health.model import TriadHealth

app = typer.Typer(help="Prometheus metrics of the triad's health.", no_args_is_help=True)


class CachedHealth:
    """Collects at most once per `min_interval_s` however often Prometheus scrapes (one collection at a time)."""

    def __init__(self, agent: AgentContext, min_interval_s: float) -> None:
        self.agent = agent
        self.min_interval_s = min_interval_s
        self._lock = threading.Lock()
        self._last: tuple[float, TriadHealth] | None = None

    def __call__(self) -> TriadHealth:
        with self._lock:
            if self._last is None or time.monotonic() - self._last[0] >= self.min_interval_s:
                self._last = (time.monotonic(), asyncio.run(read_health(self.agent)))
            return self._last[1]


@app.command()
def serve(
    ctx: typer.Context,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 9464,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (loopback by default).")] = "127.0.0.1",
    min_interval: Annotated[
        float, typer.Option("--min-interval", min=0.0, help="Seconds a collected health is reused between scrapes.")
    ] = 5.0,
    timeout: TimeoutOpt = DEFAULT_THRESHOLDS.probe_timeout_s,
) -> None:
    """Serve /metrics until Ctrl-C / SIGTERM (then exit 0)."""
    from prometheus_client import start_http_server

    from kgents.health.prometheus import triad_registry

    settings = state(ctx).settings()
    source = CachedHealth(AgentContext(settings, thresholds_with(timeout), record="metrics"), min_interval)
    try:
        server, thread = start_http_server(port, addr=host, registry=triad_registry(source))
    except OSError as exc:
        from kgents.errors import BackendUnavailableError

        raise BackendUnavailableError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    err_console.print(f"kgents: serving http://{host}:{port}/metrics; Ctrl-C to stop", markup=False)
    try:
        while thread.is_alive() and not stop.wait(1.0):
            pass
    finally:
        server.shutdown()

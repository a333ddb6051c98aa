"""`kgents serve`: the memory server (JSON HTTP API, MCP at /mcp) for every process on this KGENTS_HOME.

On the embedded default it owns the vector index and relays in-process, so every other kgents command and Python
face of the home goes through it; with the real triad any number may run. The server stack (uvicorn, starlette) is
imported inside the command, so other commands start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from kgents.cli.context import console, run, state
from kgents.config import Settings
from kgents.home.discovery import DEFAULT_HOST, DEFAULT_PORT, token_file

if TYPE_CHECKING:
    from kgents.server.run import Serving

HostOpt = Annotated[
    str, typer.Option("--host", help="Address to listen on; anything but loopback needs KGENTS_SERVER_TOKEN.")
]
PortOpt = Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on (0: any free one).")]


def announce(serving: Serving) -> None:
    relay = ", relaying in-process" if serving.relaying else ""
    console.print(
        f"kgents serve: {serving.url} for {serving.settings.describe_anchor()}{relay}"
        f" (token: {serving_token_source(serving.settings)}; SIGTERM or Ctrl-C stops)",
        markup=False,
        soft_wrap=True,
    )


def serving_token_source(settings: Settings) -> str:
    """Where a client finds the token (never the token itself)."""
    return "KGENTS_SERVER_TOKEN" if settings.server_token else str(token_file(settings))


def run_server(settings: Settings, host: str, port: int) -> int:
    """Serve until stopped; returns the outbox events the server's in-process relay completed."""
    from kgents.cli.index_access import tell
    from kgents.server.run import serve as serve_until_stopped

    relayed = run(lambda: serve_until_stopped(settings, host=host, port=port, announce=announce, progress=tell))
    console.print("kgents serve: stopped", markup=False)
    return relayed


def serve(ctx: typer.Context, host: HostOpt = DEFAULT_HOST, port: PortOpt = DEFAULT_PORT) -> None:
    """Serve this home's memory over HTTP until SIGTERM / Ctrl-C (the relay finishes its batch in flight)."""
    run_server(state(ctx).settings(), host, port)

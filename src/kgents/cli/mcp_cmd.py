"""`kgents mcp`: the memory of one persona as an MCP server over stdio, for desktop agents."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Coroutine
from typing import Annotated, Any, NoReturn

import typer

from kgents.cli.context import persona_flag, run, state
from kgents.cli.index_access import tell


def mcp(
    ctx: typer.Context,
    persona: Annotated[
        str | None,
        typer.Option("--persona", "-p", help="Whose memory the tools reach (KGENTS_PERSONA).", callback=persona_flag),
    ] = None,
) -> None:
    """Serve MCP over stdin/stdout (tools: remember, recall, get, list, nurture, forget, history, soul_mode,
    status) until the client closes it (or SIGTERM). The persona is this server's, never a tool argument.

    On the embedded default the tools go through this home's server when one runs (`kgents serve`, `synapse
    run`, another `kgents mcp`); when none does, this process becomes it for as long as the session lasts (on a
    free loopback port, in the home's server file), so every other kgents command of the home works beside it."""
    cli = state(ctx)
    settings = cli.settings()
    settings = settings.with_persona(persona) if persona else settings

    # imported here: the MCP SDK (pydantic, starlette) would slow every other command's start
    from kgents.memory.attachment import attaches
    from kgents.memory.factory import open_memory
    from kgents.server.attach import HomeAttachment
    from kgents.server.mcp import build_mcp_server

    def serving(url: str) -> None:
        tell(f"kgents mcp: serving KGENTS_HOME {settings.home} at {url} for its other kgents processes")

    async def serve() -> None:
        # opened first (a bad setting is one line, then exit)
        if attaches(settings):
            async with HomeAttachment(settings, progress=tell, serving=serving) as home:
                signalled = await until_stopped(build_mcp_server(home.memory).run_stdio_async())
        else:
            memory = await open_memory(settings)  # the real triad, or the server KGENTS_SERVER_URL names
            try:
                signalled = await until_stopped(build_mcp_server(lambda: memory).run_stdio_async())
            finally:
                await memory.close()
        if signalled:
            end_process()

    run(serve)


async def until_stopped(session: Coroutine[Any, Any, None]) -> bool:
    """Run the stdio session until the client closes stdin (False), or SIGTERM / SIGINT asks it to stop (True).
    The SDK reads stdin in a worker thread that no cancellation reaches, so after a signal the session is left
    behind: the caller closes what it serves (server file, relay batch in flight, index) and ends the process."""
    task = asyncio.create_task(session)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        stopping.cancel()
    if task.done():
        task.result()  # the session's own error, if any
        return False
    task.cancel()
    return True


def end_process() -> NoReturn:
    """Exit 0 now, without waiting for the stdin reader thread (see `until_stopped`)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

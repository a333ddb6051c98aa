"""`kgents mcp`: the memory of one persona as an MCP server over stdio, for desktop agents."""

from __future__ import annotations

from typing import Annotated

import typer

from kgents.cli.context import run, state


def mcp(
    ctx: typer.Context,
    persona: Annotated[
        str | None, typer.Option("--persona", "-p", help="Whose memory the tools reach (KGENTS_PERSONA).")
    ] = None,
) -> None:
    """Serve MCP over stdin/stdout (tools: remember, recall, get, list, nurture, forget, history, soul_mode,
    status) until the client closes it. The persona is this server's, never a tool argument. When this home's
    `kgents serve` runs (or KGENTS_SERVER_URL names one), the tools go through it."""
    cli = state(ctx)
    settings = cli.settings()
    settings = settings.with_persona(persona) if persona else settings

    # imported here: the MCP SDK (pydantic, starlette) would slow every other command's start
    from kgents.memory.factory import open_memory
    from kgents.server.mcp import build_mcp_server

    async def serve() -> None:
        # opened first (a bad setting is one line, then exit); through this home's `kgents serve` when one runs
        memory = await open_memory(settings)
        try:
            await build_mcp_server(lambda: memory).run_stdio_async()
        finally:
            await memory.close()

    run(serve)

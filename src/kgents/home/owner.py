"""Waiting for the embedded index: one owning process at a time, everyone else through the home's server.

Qdrant Edge lets one process own the embedded index. A process that needs it looks for the home's live server
first (and goes through it when there is one); else it opens the index itself; while another process owns it for
a moment (a search, a reconcile, a server still starting), it looks again, until a deadline, instead of failing.
Every opener of the embedded index (short commands, AGENTESE paths, `kgents serve`, `kgents mcp`) waits here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from kgents.config import Settings
from kgents.errors import IndexLockedError
from kgents.home.discovery import ServerInfo, find_server

T = TypeVar("T")

OWNER_WAIT_S = 60.0
"""How long a process waits for the one that owns the embedded index before it gives up."""
OWNER_POLL_S = 0.05

Progress = Callable[[str], None]


def waiting_line(error: IndexLockedError, wait_s: float) -> str:
    owner = f"in use by {error.owner}" if error.owner else str(error)
    return f"kgents: waiting up to {wait_s:g} s for the embedded index ({owner})"


async def server_or_own(
    settings: Settings,
    open_own: Callable[[], Awaitable[T]],
    *,
    wait_s: float = OWNER_WAIT_S,
    progress: Progress | None = None,
    find: Callable[[Settings], ServerInfo | None] = find_server,
) -> T | ServerInfo:
    """The home's live server (`find`) if there is one, else what `open_own()` opened; while another process owns
    the embedded index, look for both again until `wait_s` passed (telling `progress` once), then raise the
    owner's IndexLockedError."""
    deadline = time.monotonic() + wait_s
    told = False
    while True:
        server = find(settings)
        if server is not None:
            return server
        try:
            return await open_own()
        except IndexLockedError as exc:
            if time.monotonic() >= deadline:
                raise
            if not told and progress is not None:
                progress(waiting_line(exc, wait_s))
            told = True
        await asyncio.sleep(OWNER_POLL_S)

"""How a short-lived command reaches the vector index beside every other kgents process on the same home.

When a server runs for the home (`kgents serve`, or `kgents synapse run` on the embedded default), the command
goes through it. When none does and another process owns the embedded index for a moment (another search, a
reconcile), the command waits for it, with one progress line and a deadline, instead of failing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from kgents.cli.context import err_console
from kgents.cli.progress import LongWork
from kgents.config import Settings
from kgents.errors import IndexLockedError
from kgents.home.discovery import ServerInfo
from kgents.home.owner import OWNER_WAIT_S, Progress, server_or_own

if TYPE_CHECKING:
    from kgents.memory.remote import RemoteMemory
    from kgents.synapse.runtime import DrainResult, Synapse

T = TypeVar("T")


def tell(line: str) -> None:
    err_console.print(line, markup=False, highlight=False, soft_wrap=True)


async def open_local_or_server(
    settings: Settings,
    *,
    wait_s: float = OWNER_WAIT_S,
    progress: Progress = tell,
    **open_options: Any,
) -> Synapse | ServerInfo:
    """The home's live server if there is one, else the opened stack; while another process owns the embedded
    index, look again until `wait_s` passed (one progress line), then raise its IndexLockedError."""
    from kgents.synapse.runtime import open_synapse

    return await server_or_own(
        settings, lambda: open_synapse(settings, **open_options), wait_s=wait_s, progress=progress
    )


async def local_or_remote(
    settings: Settings,
    persona: str,
    work: Callable[[Synapse], Awaitable[T]],
    remote: Callable[[RemoteMemory], Awaitable[T]] | None,
    *,
    what: str = "this command",
    **open_options: Any,
) -> T:
    """`work` on the opened stack (closed after), or `remote` on `persona`'s memory through the home's server when
    one runs (a command without a remote form is refused by name then)."""
    from kgents.memory.remote import RemoteMemory

    opened = await open_local_or_server(settings, **open_options)
    if isinstance(opened, ServerInfo):
        if remote is None:
            raise server_in_the_way(opened, what)
        async with RemoteMemory(opened, persona) as memory:
            return await remote(memory)
    try:
        return await work(opened)
    finally:
        await opened.close()


WATCH_EVERY_S = 0.5


async def catch_up_shown(synapse: Synapse, wait_s: float) -> DrainResult:
    """`synapse.catch_up(wait_s)` with its progress on stderr (`cli.progress`): the first search after an import
    of thousands of entries indexes them all first."""
    from kgents.synapse.metrics import QUEUE_DEPTH_CAP

    pending = await synapse.queue.queue_depth(QUEUE_DEPTH_CAP)
    if not pending:
        return await synapse.catch_up(wait_s)

    async def watch(shown: LongWork) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY_S)
            shown.update(max(0, pending - await synapse.queue.queue_depth(QUEUE_DEPTH_CAP)))

    async with LongWork("indexing pending writes", total=pending, unit="events") as shown:
        watcher = asyncio.create_task(watch(shown))
        try:
            result = await synapse.catch_up(wait_s)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
        shown.update(pending - result.pending)
        return result


def server_in_the_way(server: ServerInfo, what: str) -> IndexLockedError:
    """For the commands that need the index to themselves (reindex, adopt)."""
    return IndexLockedError(
        f"{what} needs the index to itself, and the kgents server at {server.url} (pid {server.pid}) holds it;"
        " stop the server, run it, then start the server again"
    )

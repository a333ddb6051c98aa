"""How a long-lived process of an embedded home (`kgents mcp`, open for hours beside a desktop agent) reaches its
memory without keeping every other process of the home out of the index.

When the home's server runs, it goes through it. When none does, it becomes that server: it owns the index, relays
in-process, and listens on a free loopback port named in the home's server file (with the home's token), so every
other kgents process (`garden plant`, `garden search`, `synapse reindex`, another `kgents mcp`) goes through it.
When the server it went through stops, its next call attaches again: to the next server, or as it.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

from kgents.config import Settings, check_persona
from kgents.home.discovery import DEFAULT_HOST, ServerInfo, pid_alive
from kgents.home.owner import OWNER_WAIT_S, Progress, server_or_own
from kgents.memory.api import MemoryAPI


class HomeAttachment:
    """`async with HomeAttachment(settings, "kent") as home: memory = await home.memory()`."""

    def __init__(
        self,
        settings: Settings,
        persona: str | None = None,
        *,
        wait_s: float = OWNER_WAIT_S,
        progress: Progress | None = None,
        serving: Progress | None = None,
    ) -> None:
        self.settings = settings
        self.persona = check_persona(persona) if persona else settings.persona
        self._wait_s = wait_s
        self._progress = progress
        self._serving = serving
        """Told `url` when this process becomes the home's server."""
        self._lock = asyncio.Lock()
        self._stack: contextlib.AsyncExitStack | None = None
        self._memory: MemoryAPI | None = None
        self._through: ServerInfo | None = None
        self.url: str | None = None
        """Where this process serves the home, while it does."""

    async def __aenter__(self) -> HomeAttachment:
        await self.memory()  # a bad setting or a busy index is reported before the session starts
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def serves(self) -> bool:
        """True while this process is the home's server (it owns the index)."""
        return self.url is not None

    async def memory(self) -> MemoryAPI:
        """The persona's memory: through the home's server, or this process's own as the server."""
        async with self._lock:
            if self._memory is None or self._server_gone():
                await self._detach()
                await self._attach()
            assert self._memory is not None
            return self._memory

    def _server_gone(self) -> bool:
        through = self._through
        return through is not None and through.pid is not None and not pid_alive(through.pid)

    async def _attach(self) -> None:
        from kgents.server.hub import MemoryHub
        from kgents.server.run import hosting

        settings = self.settings
        opened = await server_or_own(
            settings, lambda: MemoryHub.open(settings), wait_s=self._wait_s, progress=self._progress
        )
        stack = contextlib.AsyncExitStack()
        try:
            if isinstance(opened, ServerInfo):
                from kgents.memory.remote import RemoteMemory

                remote = RemoteMemory(opened, self.persona, settings=settings)  # it follows the home's next server
                self._memory = await stack.enter_async_context(remote)
                self._through = opened
            else:
                stack.push_async_callback(opened.close)
                hosted = await stack.enter_async_context(hosting(opened, host=DEFAULT_HOST, port=0))
                self._memory = await opened.memory(self.persona)
                self.url = hosted.url
                if self._serving is not None:
                    self._serving(hosted.url)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack

    async def _detach(self) -> None:
        stack, self._stack = self._stack, None
        self._memory = self._through = self.url = None
        if stack is not None:
            await stack.aclose()

    async def close(self) -> None:
        async with self._lock:
            await self._detach()

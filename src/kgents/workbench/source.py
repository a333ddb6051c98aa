"""Where the workbench's data comes from: a `WorkbenchSource` (live: AGENTESE and the Python face; or a fixed,
seeded one for snapshots and screenshots), run on a background event loop so no I/O ever touches the UI's loop."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import threading
from collections.abc import AsyncIterator, Coroutine, Sequence
from concurrent.futures import Future
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

import numpy as np

from kgents.agentese import AgentContext, Args, invoke, read_health
from kgents.config import Settings
from kgents.garden.filters import EntryFilter
from kgents.garden.model import GardenEntry
from kgents.garden.records import AuditRecord
from kgents.health.drift import DriftSample
from kgents.health.levels import DEFAULT_THRESHOLDS, Thresholds
from kgents.health.model import TriadHealth
from kgents.memory.api import MemoryAPI, SoulView

T = TypeVar("T")
GARDEN_LIMIT = 500
"""At most this many entries are listed or mapped."""


class WorkbenchSource(Protocol):
    """Everything the screens show. Every method may raise: the screen that asked says why and carries on."""

    async def health(self) -> TriadHealth: ...

    async def drift(self, limit: int) -> list[DriftSample]: ...

    async def souls(self) -> list[SoulView]: ...

    async def entries(self, filters: EntryFilter | None) -> list[GardenEntry]: ...

    async def history(self, entry_id: str) -> list[AuditRecord]: ...

    async def recall(self, query: str, limit: int) -> list[str]:
        """The ids of the entries recalled for `query`, best first."""
        ...

    async def vectors(self, entries: Sequence[GardenEntry]) -> np.ndarray[Any, np.dtype[np.float32]]: ...

    async def close(self) -> None: ...


class LiveSource:
    """Health and drift through AGENTESE; the soul and the garden through the Python face.

    On the embedded default the vector index belongs to one process at a time, so the face is opened for each
    read and closed at once (the health probe, a relay or a chat can then take the index); with a Qdrant server
    (KGENTS_QDRANT_URL) nothing is exclusive and one face stays open."""

    def __init__(self, settings: Settings, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> None:
        self.settings = settings
        self.ctx = AgentContext(settings, thresholds)
        self._memory: MemoryAPI | None = None
        self._turn = asyncio.Lock()
        """One reader of the index at a time: a probe never finds it held by the workbench's own face."""

    async def health(self) -> TriadHealth:
        async with self._turn:
            return await read_health(self.ctx)

    async def drift(self, limit: int) -> list[DriftSample]:
        found = await invoke(self.ctx, "time.drift.history", Args(options={"limit": str(limit)}))
        return [_sample(s) for s in found["samples"]]

    @asynccontextmanager
    async def face(self) -> AsyncIterator[MemoryAPI]:
        async with self._turn, self._opened() as memory:
            yield memory

    @asynccontextmanager
    async def _opened(self) -> AsyncIterator[MemoryAPI]:
        if self.settings.qdrant_url:
            if self._memory is None:
                self._memory = await open_face(self.settings)
            yield self._memory
            return
        memory = await open_face(self.settings)
        try:
            yield memory
        finally:
            await memory.close()

    async def souls(self) -> list[SoulView]:
        async with self.face() as memory:
            return [await memory.soul()]

    async def entries(self, filters: EntryFilter | None) -> list[GardenEntry]:
        async with self.face() as memory:
            return await memory.list(filters, order_by="planted", limit=GARDEN_LIMIT)

    async def history(self, entry_id: str) -> list[AuditRecord]:
        async with self.face() as memory:
            return await memory.history(entry_id)

    async def recall(self, query: str, limit: int) -> list[str]:
        async with self.face() as memory:
            hits = await memory.recall(query, limit=limit)
        return [str(h.entry.id) for h in hits]

    async def vectors(self, entries: Sequence[GardenEntry]) -> np.ndarray[Any, np.dtype[np.float32]]:
        """The entries' content embedded by the active embedder (as the index holds them)."""
        from kgents.resonance.embedders import open_embedder

        embedder = open_embedder()
        found = await asyncio.to_thread(embedder.embed, [e.content for e in entries])
        return np.asarray(found, dtype=np.float32)

    async def close(self) -> None:
        if self._memory is not None:
            await self._memory.close()
            self._memory = None


SERVER_FACTORY = "kgents.memory.factory"
"""The server's face factory (`open_memory`: KGENTS_SERVER_URL or a live `kgents serve` of this home, which owns
the embedded index, else in-process), where this build has it."""


async def open_face(settings: Settings) -> MemoryAPI:
    """The face on `settings`, opened: through a server when the build can reach one, else `AsyncMemory`."""
    try:
        factory = importlib.import_module(SERVER_FACTORY)
    except ModuleNotFoundError:
        from kgents.memory.local import AsyncMemory

        return await AsyncMemory.open(settings)
    opened: MemoryAPI = await factory.open_memory(settings)
    return opened


def _sample(data: dict[str, Any]) -> DriftSample:
    from datetime import datetime

    fields = {k: v for k, v in data.items() if k not in ("measured_at", "source")}
    return DriftSample(datetime.fromisoformat(str(data["measured_at"])), str(data["source"]), **fields)


class BackgroundLoop:
    """An event loop on a thread of its own: the source's coroutines run there, workers wait on their futures.

    `stop()` cancels whatever still runs there first, so no thread is left waiting for ever on a coroutine that
    will never run again (at exit, the UI loop's executor shutdown joins those threads)."""

    STOP_S = 5.0

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._stopped = False
        self._thread = threading.Thread(target=self.loop.run_forever, name="workbench-io", daemon=True)
        self._thread.start()

    def submit(self, work: Coroutine[Any, Any, T]) -> Future[T]:
        if self._stopped:
            work.close()
            raise RuntimeError("the workbench's I/O loop has stopped")
        return asyncio.run_coroutine_threadsafe(work, self.loop)

    def run(self, work: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """The coroutine's result; past `timeout` it is cancelled and TimeoutError says how long it had."""
        future = self.submit(work)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise TimeoutError(f"no answer within {timeout:g} s") from None

    def stop(self) -> None:
        self._stopped = True
        if self.loop.is_running():
            with contextlib.suppress(Exception):  # best effort: the loop stops below whatever happens here
                asyncio.run_coroutine_threadsafe(_cancel_all(), self.loop).result(self.STOP_S)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=self.STOP_S)
        if not self.loop.is_running():
            self.loop.close()


async def _cancel_all() -> None:
    """Cancel every other task on the running loop and wait until they have finished."""
    me = asyncio.current_task()
    others = [t for t in asyncio.all_tasks() if t is not me]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)

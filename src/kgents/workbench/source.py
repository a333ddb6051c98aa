"""Where the workbench's data comes from: a `WorkbenchSource` (live: AGENTESE and the Python face; or a fixed,
seeded one for snapshots and screenshots), run on a background event loop so no I/O ever touches the UI's loop."""

from __future__ import annotations

import asyncio
import importlib
import threading
from collections.abc import Coroutine, Sequence
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar, cast

import numpy as np

from kgents.agentese import AgentContext, invoke, read_health
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


class FaceUnavailable(RuntimeError):
    """The Python face (`AsyncMemory`) is not part of this build, or could not open."""


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
    """Health and drift through AGENTESE; the soul and the garden through the Python face (opened on first use)."""

    def __init__(self, settings: Settings, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> None:
        self.settings = settings
        self.ctx = AgentContext(settings, thresholds)
        self._memory: MemoryAPI | None = None

    async def health(self) -> TriadHealth:
        return await read_health(self.ctx)

    async def drift(self, limit: int) -> list[DriftSample]:
        found = await invoke(self.ctx, "time.drift.history", _limit(limit))
        return [_sample(s) for s in found["samples"]]

    async def memory(self) -> MemoryAPI:
        if self._memory is None:
            self._memory = await open_face(self.settings)
        return self._memory

    async def souls(self) -> list[SoulView]:
        return [await (await self.memory()).soul()]

    async def entries(self, filters: EntryFilter | None) -> list[GardenEntry]:
        return await (await self.memory()).list(filters, order_by="planted_at", limit=GARDEN_LIMIT)

    async def history(self, entry_id: str) -> list[AuditRecord]:
        return await (await self.memory()).history(entry_id)

    async def recall(self, query: str, limit: int) -> list[str]:
        hits = await (await self.memory()).recall(query, limit=limit)
        return [str(h.entry.id) for h in hits]

    async def vectors(self, entries: Sequence[GardenEntry]) -> np.ndarray[Any, np.dtype[np.float32]]:
        from kgents.resonance.embedders import open_embedder

        embedder = open_embedder()
        found = await asyncio.to_thread(embedder.embed, [e.content for e in entries])
        return np.asarray(found, dtype=np.float32)

    async def close(self) -> None:
        if self._memory is not None:
            await self._memory.close()
            self._memory = None


async def open_face(settings: Settings) -> MemoryAPI:
    """The in-process face (`kgents.memory.AsyncMemory`), opened; FaceUnavailable when this build has none."""
    module = importlib.import_module("kgents.memory")
    factory = getattr(module, "AsyncMemory", None)
    if factory is None:
        raise FaceUnavailable("the Python face (AsyncMemory) is not part of this build")
    memory = factory(settings.persona, settings)
    opener = getattr(memory, "open", None)
    if callable(opener):
        await opener()
    return cast(MemoryAPI, memory)


def _limit(limit: int) -> Any:
    from kgents.agentese import Args

    return Args(options={"limit": str(limit)})


def _sample(data: dict[str, Any]) -> DriftSample:
    from datetime import datetime

    fields = {k: v for k, v in data.items() if k not in ("measured_at", "source")}
    return DriftSample(datetime.fromisoformat(str(data["measured_at"])), str(data["source"]), **fields)


class BackgroundLoop:
    """An event loop on a thread of its own: the source's coroutines run there, workers wait on their futures."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="workbench-io", daemon=True)
        self._thread.start()

    def submit(self, work: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(work, self.loop)

    def run(self, work: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return self.submit(work).result(timeout)

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)
        if not self.loop.is_running():
            self.loop.close()

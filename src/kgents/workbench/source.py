"""Where the workbench's data comes from: a `WorkbenchSource` (live: AGENTESE and the Python face; or a fixed,
seeded one for snapshots and screenshots), run on a `LoopThread` so no I/O ever touches the UI's loop."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

import numpy as np

from kgents.agentese.invoke import invoke, read_health
from kgents.agentese.resolver import AgentContext, Args
from kgents.config import Settings
from kgents.garden.filters import EntryFilter
from kgents.garden.model import GardenEntry
from kgents.garden.records import AuditRecord
from kgents.health.levels import DEFAULT_THRESHOLDS, Thresholds
from kgents.health.model import TriadHealth
from kgents.memory.api import MemoryAPI, SoulView
from kgents.synapse.drift import DriftSample

GARDEN_LIMIT = 500
"""At most this many entries are listed or mapped."""
IO_S = 60.0
"""A read with no answer by then is abandoned and says so (every health probe has a shorter timeout of its own)."""


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

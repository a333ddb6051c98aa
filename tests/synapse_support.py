"""Test support for the relay: a fault-injecting wrapper over a real index, counting, failing and pausing
wrappers over the real embedder, and a way to take a relay's claim away."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Sequence
from typing import Any

from kgents.errors import BackendUnavailableError
from kgents.garden.filters import EntryFilter
from kgents.resonance.lexical import SparseTerms
from kgents.resonance.protocols import (
    CollectionInfo,
    Embedder,
    IndexHit,
    IndexPoint,
    PointPayload,
    RankedHit,
    Vectors,
)
from kgents.synapse.queue import RelayQueue, lock_key
from tests.helpers import wait_until


class CountingEmbedder:
    """Delegates to a real embedder and counts the texts it was asked to embed."""

    def __init__(self, inner: Embedder, name: str | None = None) -> None:
        self.inner = inner
        self._name = name or inner.name
        self.calls = 0
        self.texts: list[str] = []

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.calls += 1
        self.texts.extend(texts)
        return self.inner.embed(texts)


class PoisonEmbedder(CountingEmbedder):
    """Fails on any text containing `marker`, like a model choking on one input."""

    def __init__(self, inner: Embedder, marker: str = "POISON") -> None:
        super().__init__(inner)
        self.marker = marker

    def embed(self, texts: Sequence[str]) -> Vectors:
        if any(self.marker in t for t in texts):
            raise ValueError("the model cannot embed this text")
        return super().embed(texts)


class FaultyIndex:
    """A real index behind a switch: while `down`, every call raises BackendUnavailableError."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.down = False
        self.signal_searches = 0
        self.signal_limits: list[int] = []
        """The depth each `search_signals` asked for."""
        self.failed_calls = 0
        self.upserts: list[tuple[uuid.UUID, int]] = []
        self.in_flight: dict[uuid.UUID, int] = {}
        self.max_concurrent_per_entry = 0
        self.version_scans = 0
        """Calls of `versions`: a scan of every point of a collection."""

    @property
    def backend(self) -> str:
        return str(self.inner.backend)

    def _check(self) -> None:
        if self.down:
            self.failed_calls += 1
            raise BackendUnavailableError("KGENTS_QDRANT_URL: the index is down (injected)")

    @property
    def location(self) -> str:
        return str(self.inner.location)

    async def ensure_collection(self, name: str, embedder: str, dimension: int, index_id: str | None = None) -> None:
        self._check()
        await self.inner.ensure_collection(name, embedder, dimension, index_id)

    async def index_id(self, name: str) -> str | None:
        self._check()
        found = await self.inner.index_id(name)
        return None if found is None else str(found)

    async def collections(self) -> list[CollectionInfo]:
        self._check()
        return list(await self.inner.collections())

    async def drop_collection(self, name: str) -> None:
        self._check()
        await self.inner.drop_collection(name)

    async def upsert(self, collection: str, points: Sequence[IndexPoint]) -> int:
        self._check()
        ids = [p.id for p in points]
        for i in ids:
            self.in_flight[i] = self.in_flight.get(i, 0) + 1
            self.max_concurrent_per_entry = max(self.max_concurrent_per_entry, self.in_flight[i])
        try:
            written = int(await self.inner.upsert(collection, points))
        finally:
            for i in ids:
                self.in_flight[i] -= 1
        self.upserts.extend((p.id, p.payload.version) for p in points)
        return written

    async def set_payload(self, collection: str, entry_id: uuid.UUID, payload: PointPayload) -> bool:
        self._check()
        return bool(await self.inner.set_payload(collection, entry_id, payload))

    async def delete(self, collection: str, ids: Sequence[uuid.UUID]) -> None:
        self._check()
        await self.inner.delete(collection, ids)

    async def delete_persona(self, collection: str, persona: str) -> int:
        self._check()
        return int(await self.inner.delete_persona(collection, persona))

    async def retrieve(self, collection: str, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, PointPayload]:
        self._check()
        return dict(await self.inner.retrieve(collection, ids))

    async def search(
        self,
        collection: str,
        vector: Any,
        persona: str,
        flt: EntryFilter,
        limit: int = 10,
        score_threshold: float | None = None,
    ) -> list[IndexHit]:
        self._check()
        return list(await self.inner.search(collection, vector, persona, flt, limit, score_threshold))

    async def versions(self, collection: str) -> dict[uuid.UUID, tuple[str, int]]:
        self._check()
        self.version_scans += 1
        return dict(await self.inner.versions(collection))

    async def has_lexical(self, collection: str) -> bool:
        self._check()
        return bool(await self.inner.has_lexical(collection))

    async def search_signals(
        self,
        collection: str,
        vector: Any,
        terms: SparseTerms | None,
        persona: str,
        flt: EntryFilter,
        limit: int = 10,
    ) -> tuple[list[RankedHit], list[RankedHit]]:
        self._check()
        self.signal_searches += 1
        self.signal_limits.append(limit)
        dense, lexical = await self.inner.search_signals(collection, vector, terms, persona, flt, limit)
        return list(dense), list(lexical)

    async def drop_lexical(self, collection: str, ids: Sequence[uuid.UUID]) -> None:
        self._check()
        await self.inner.drop_lexical(collection, ids)

    async def count(self, collection: str) -> int:
        self._check()
        return int(await self.inner.count(collection))

    async def close(self) -> None:
        await self.inner.close()


class Gate:
    """Holds a call until the test opens it: `entered` is set when a call arrives (from any thread)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def hold(self) -> None:
        self.entered.set()
        if not self.opened.wait(30):
            raise TimeoutError("the test never opened the gate")

    async def hold_async(self) -> None:
        await asyncio.to_thread(self.hold)


class PausingEmbedder(CountingEmbedder):
    """A real embedder that waits at `gate` before each embedding (a relay stalled mid-batch)."""

    def __init__(self, inner: Embedder, gate: Gate) -> None:
        super().__init__(inner)
        self.gate = gate

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.gate.hold()
        return super().embed(texts)


class PausingIndex(FaultyIndex):
    """A real index whose upserts wait at `gate` first (a write delayed after its fence passed)."""

    def __init__(self, inner: Any, gate: Gate) -> None:
        super().__init__(inner)
        self.gate = gate

    async def upsert(self, collection: str, points: Sequence[IndexPoint]) -> int:
        await self.gate.hold_async()
        return await super().upsert(collection, points)


async def take_claim_away(queue: RelayQueue, relay_id: str, entry_id: uuid.UUID) -> None:
    """Make `relay_id` lose its claim on `entry_id`, as if its process stalled past the lease (SQLite: the lease
    runs out) or its claim connection died (PostgreSQL: the server ends it)."""
    if queue.backend == "postgres":
        pool: Any = queue.pool  # type: ignore[attr-defined]
        key = lock_key(entry_id)
        pid = await pool.fetchval(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
            " AND classid = $1 AND objid = $2",
            (key >> 32) & 0xFFFFFFFF,
            key & 0xFFFFFFFF,
        )
        assert pid is not None, "no connection holds the entry's claim"
        await pool.execute("SELECT pg_terminate_backend($1)", pid)
        await wait_until(
            lambda: pool.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid),
            lambda n: n == 0,
            what="the claim connection gone",
        )
        return
    sqlite: Any = queue.db  # type: ignore[attr-defined]

    def work() -> None:
        with sqlite.write() as conn:
            conn.execute(
                "UPDATE garden_outbox SET claimed_until = '2000-01-01T00:00:00.000000+00:00' WHERE claimed_by = ?",
                (relay_id,),
            )

    await sqlite.run(work)


async def no_other_claim_for(queue: Any, seconds: float) -> None:
    """Another relay claiming again and again for `seconds` finds nothing: a lease renewed in time is never taken
    over (a 1 s lease: three of them)."""
    import time

    from tests.helpers import wait_until

    began = time.monotonic()

    async def other_claims_nothing() -> bool:
        async with queue.claim("other", 10, 30) as other:
            assert other.events == [], "a renewed lease is never taken over"
        return time.monotonic() - began > seconds

    await wait_until(other_claims_nothing, timeout=seconds + 7, what=f"{seconds:g} s of leases")

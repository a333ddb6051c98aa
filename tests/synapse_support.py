"""Test support for the relay: a fault-injecting wrapper over a real index, counting and failing embedders,
and the factories that open the real adapters (embedded edge index, qdrant-client in-process) when
available."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from kgents.errors import BackendUnavailableError
from kgents.resonance.protocols import (
    CollectionInfo,
    Embedder,
    IndexFilter,
    IndexHit,
    IndexPoint,
    PointPayload,
    Vectors,
)


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


class HashingEmbedder:
    """Deterministic hashed bag of words (a stand-in used only until the real embedder is importable)."""

    def __init__(self, name: str = "test-hashing-64", dimension: int = 64) -> None:
        self._name = name
        self._dimension = dimension

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
                out[row, h % self._dimension] += 1.0
            norm = float(np.linalg.norm(out[row])) or 1.0
            out[row] /= norm
        return out


class FaultyIndex:
    """A real index behind a switch: while `down`, every call raises BackendUnavailableError."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.down = False
        self.failed_calls = 0
        self.upserts: list[tuple[uuid.UUID, int]] = []
        self.in_flight: dict[uuid.UUID, int] = {}
        self.max_concurrent_per_entry = 0

    @property
    def backend(self) -> str:
        return str(self.inner.backend)

    def _check(self) -> None:
        if self.down:
            self.failed_calls += 1
            raise BackendUnavailableError("KGENTS_QDRANT_URL: the index is down (injected)")

    async def ensure_collection(self, name: str, embedder: str, dimension: int) -> None:
        self._check()
        await self.inner.ensure_collection(name, embedder, dimension)

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

    async def retrieve(self, collection: str, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, PointPayload]:
        self._check()
        return dict(await self.inner.retrieve(collection, ids))

    async def search(
        self,
        collection: str,
        vector: Any,
        flt: IndexFilter,
        limit: int = 10,
        score_threshold: float | None = None,
    ) -> list[IndexHit]:
        self._check()
        return list(await self.inner.search(collection, vector, flt, limit, score_threshold))

    async def versions(self, collection: str) -> dict[uuid.UUID, tuple[str, int]]:
        self._check()
        return dict(await self.inner.versions(collection))

    async def count(self, collection: str) -> int:
        self._check()
        return int(await self.inner.count(collection))

    async def close(self) -> None:
        await self.inner.close()


class MemoryIndex:
    """A dict-backed VectorIndex honouring the protocol's version guard: used only while the real adapters are
    not importable (the fixtures prefer qdrant-client's in-process mode and the embedded edge index)."""

    backend = "memory"

    def __init__(self) -> None:
        self._cols: dict[str, tuple[str, int, dict[uuid.UUID, tuple[np.ndarray, PointPayload]]]] = {}

    async def ensure_collection(self, name: str, embedder: str, dimension: int) -> None:
        if name in self._cols:
            if self._cols[name][:2] != (embedder, dimension):
                from kgents.errors import IndexMismatchError

                raise IndexMismatchError(f"collection {name} was built by another embedder")
            return
        self._cols[name] = (embedder, dimension, {})

    async def collections(self) -> list[CollectionInfo]:
        return [CollectionInfo(n, e, d, len(p)) for n, (e, d, p) in self._cols.items()]

    async def drop_collection(self, name: str) -> None:
        self._cols.pop(name, None)

    def _points(self, name: str) -> dict[uuid.UUID, tuple[np.ndarray, PointPayload]]:
        if name not in self._cols:
            raise KeyError(f"no collection {name}")
        return self._cols[name][2]

    async def upsert(self, collection: str, points: Sequence[IndexPoint]) -> int:
        store = self._points(collection)
        written = 0
        for p in points:
            old = store.get(p.id)
            if old is not None and old[1].version > p.payload.version:
                continue
            store[p.id] = (np.asarray(p.vector, dtype=np.float32), p.payload)
            written += 1
        return written

    async def set_payload(self, collection: str, entry_id: uuid.UUID, payload: PointPayload) -> bool:
        store = self._points(collection)
        old = store.get(entry_id)
        if old is None or old[1].version > payload.version:
            return False
        store[entry_id] = (old[0], payload)
        return True

    async def delete(self, collection: str, ids: Sequence[uuid.UUID]) -> None:
        store = self._points(collection)
        for i in ids:
            store.pop(i, None)

    async def retrieve(self, collection: str, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, PointPayload]:
        store = self._points(collection)
        return {i: store[i][1] for i in ids if i in store}

    async def search(
        self,
        collection: str,
        vector: Any,
        flt: IndexFilter,
        limit: int = 10,
        score_threshold: float | None = None,
    ) -> list[IndexHit]:
        q = np.asarray(vector, dtype=np.float32)
        hits = []
        for i, (v, p) in self._points(collection).items():
            if p.persona != flt.persona or (flt.lifecycles and p.lifecycle not in flt.lifecycles):
                continue
            if (flt.entry_types and p.entry_type not in flt.entry_types) or not set(flt.tags) <= set(p.tags):
                continue
            if flt.min_confidence is not None and p.confidence < flt.min_confidence:
                continue
            score = float(np.dot(q, v))
            if score_threshold is None or score >= score_threshold:
                hits.append(IndexHit(i, score, p))
        return sorted(hits, key=lambda h: -h.score)[:limit]

    async def versions(self, collection: str) -> dict[uuid.UUID, tuple[str, int]]:
        return {i: (p.persona, p.version) for i, (_v, p) in self._points(collection).items()}

    async def count(self, collection: str) -> int:
        return len(self._points(collection))

    async def close(self) -> None:
        return None

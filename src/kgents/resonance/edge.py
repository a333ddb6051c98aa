"""The embedded vector index: Qdrant's engine in-process (`qdrant-edge-py`), persistent under
`KGENTS_HOME/index`.

Layout: `index/owner.lock` (see `lock.py`), and per collection `index/collections/<name>/shard/` (one edge
shard) beside `kgents.json` (the embedder and dimension it was built for). One process owns the whole
directory.

Version guard: a write first reads the stored versions (exact, because writes to a collection are serialised
by an asyncio lock in the single owning process), then writes with an engine-side condition `version <= new`
as a second line of defence.

HNSW: edge shards keep new points in plain segments (exact search: p50 12 ms at 100k points of 256-d here)
until an optimisation builds the graph (p50 ~1 ms). `EdgeShard.optimize()` holds the GIL for its whole run (a
minute at 100k), so it never runs in this process: `edge_build.py` optimises a copy in a child process and
swaps it in. It starts by itself once `auto_build_after` points are unindexed, or on `EdgeIndex.optimize()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import qdrant_edge as qe

from kgents.errors import BackendUnavailableError, NotFoundError, ValidationError
from kgents.garden.filters import EntryFilter
from kgents.home import private_dir, write_private
from kgents.resonance.edge_build import BUILD, LIVE, OLD, ReadGate, optimise_copy, recover
from kgents.resonance.edge_lexical import LEXICAL_PARAMS, ids_without_lexical, point, ranked, signal_requests
from kgents.resonance.edge_query import not_newer, search_filter, versions_of
from kgents.resonance.index_common import (
    META_LEXICAL,
    PAYLOAD_INDEXES,
    check_collection_name,
    check_limit,
    check_metadata,
    check_vector,
    lexical_flagged,
    metadata_for,
    needs_stamp,
    parse_id,
    plan_writes,
    stored_index_id,
    stored_lexical,
)
from kgents.resonance.lexical import ANALYZER, LEXICAL_VECTOR, SparseTerms
from kgents.resonance.lock import OwnerLock
from kgents.resonance.protocols import CollectionInfo, IndexHit, IndexPoint, PointPayload, RankedHit

T = TypeVar("T")

_SCHEMA = {
    "keyword": qe.PayloadSchemaType.Keyword,
    "float": qe.PayloadSchemaType.Float,
    "integer": qe.PayloadSchemaType.Integer,
}
META_FILE = "kgents.json"
SCROLL_PAGE = 1024
DEFAULT_AUTO_BUILD_AFTER = 20_000
"""Unindexed points that start a background HNSW build (about where exact search passes a few ms)."""
BUILD_CHECK_EVERY = 1_000
INLINE_WRITE = 4
"""Up to this many points an upsert runs on the event loop (tens of microseconds: less than a thread hand-off)."""
DEFAULT_BUILD_TIMEOUT_S = 3_600.0

HNSW = qe.HnswIndexConfig(
    m=16, ef_construct=100, full_scan_threshold=10_000, max_indexing_threads=max(1, (os.cpu_count() or 2) - 1)
)
"""Qdrant's defaults, but the build leaves one core to the searches."""

log = logging.getLogger(__name__)


class _Collection:
    def __init__(self, shard: qe.EdgeShard, embedder: str, dimension: int, lexical: bool = False) -> None:
        self.shard = shard
        self.lexical = lexical
        self.embedder = embedder
        self.dimension = dimension
        self.write_lock = asyncio.Lock()
        self.gate = ReadGate()
        self.replay: list[qe.UpdateOperation] | None = None  # writes made while a copy is being optimised
        self.build: asyncio.Task[bool] | None = None
        self.written_since_check = 0
        self.next_build_at = 0  # unindexed points before the next automatic build


class EdgeIndex:
    """`VectorIndex` on qdrant-edge; `EdgeIndex.open(root)` owns the directory until `close()`."""

    def __init__(
        self,
        root: Path,
        *,
        auto_build_after: int | None = DEFAULT_AUTO_BUILD_AFTER,
        indexing_threshold_kb: int | None = None,
        build_timeout_s: float = DEFAULT_BUILD_TIMEOUT_S,
    ) -> None:
        self.root = root
        self.auto_build_after = auto_build_after
        self.indexing_threshold_kb = indexing_threshold_kb
        self.build_timeout_s = build_timeout_s
        self._lock = OwnerLock(root / "owner.lock")
        self._open: dict[str, _Collection] = {}
        self._opening = asyncio.Lock()  # one loader per shard: a second load in-process hits the WAL lock
        self._closed = False

    @classmethod
    def open(
        cls,
        root: Path,
        *,
        auto_build_after: int | None = DEFAULT_AUTO_BUILD_AFTER,
        indexing_threshold_kb: int | None = None,
    ) -> EdgeIndex:
        """Take ownership of the index directory or raise `IndexLockedError` naming the current owner.

        `auto_build_after`: unindexed points that start a background HNSW build (None: only `optimize()`);
        `indexing_threshold_kb`: the engine's segment size below which no HNSW is built (None: its default).
        """
        index = cls(root, auto_build_after=auto_build_after, indexing_threshold_kb=indexing_threshold_kb)
        index._lock.acquire()
        return index

    @property
    def backend(self) -> str:
        return "edge"

    @property
    def location(self) -> str:
        return f"embedded index at {self.root.absolute()}"

    # -- plumbing -------------------------------------------------------------------------------------------

    def _dir(self, name: str) -> Path:
        return self.root / "collections" / check_collection_name(name)

    def _read_meta(self, name: str) -> dict[str, Any] | None:
        path = self._dir(name) / META_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise BackendUnavailableError(f"vector collection {name!r}: unreadable {META_FILE}: {exc}") from None
        return data if isinstance(data, dict) else None

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._closed:
            raise BackendUnavailableError("the embedded vector index is closed")
        return await asyncio.to_thread(fn, *args, **kwargs)

    def _search(self, fn: Callable[[], T]) -> T:
        """A search, on the caller's thread: the engine holds the GIL while it queries (bench: a query thread
        beside a busy Python thread takes as long as both one after the other), so a worker thread would add
        only its hand-off (0.1 ms and more on a busy machine) while the event loop waits just the same."""
        if self._closed:
            raise BackendUnavailableError("the embedded vector index is closed")
        return fn()

    def _load_shard(self, name: str, dimension: int, fresh_start: bool = True, lexical: bool = False) -> qe.EdgeShard:
        if fresh_start:
            recover(self._dir(name))
        shard_dir = self._dir(name) / LIVE
        optimizers = None
        if self.indexing_threshold_kb is not None:
            optimizers = qe.EdgeOptimizersConfig(indexing_threshold=self.indexing_threshold_kb)
        config = qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=dimension, distance=qe.Distance.Cosine),
            sparse_vectors={LEXICAL_VECTOR: LEXICAL_PARAMS} if lexical else None,
            optimizers=optimizers,
            hnsw_config=HNSW,
        )
        try:
            if (shard_dir / "edge_config.json").exists():
                shard = qe.EdgeShard.load(str(shard_dir), config)
            else:  # the engine's files inside get its own modes: the shard folder (0700) keeps them ours
                shard = qe.EdgeShard.create(str(private_dir(shard_dir)), config)
            indexed = set(shard.info().payload_schema)
            for field, kind in PAYLOAD_INDEXES.items():
                if field not in indexed:
                    shard.update(qe.UpdateOperation.create_field_index(field, _SCHEMA[kind]))
        except Exception as exc:  # the binding raises bare Exception with the engine's message
            raise BackendUnavailableError(f"vector collection {name!r} could not be opened: {exc}") from None
        return shard

    async def _collection(self, name: str) -> _Collection:
        opened = self._open.get(name)
        if opened is not None:
            return opened
        async with self._opening:
            opened = self._open.get(name)
            if opened is not None:
                return opened
            meta = self._read_meta(name)
            if meta is None:
                raise NotFoundError(f"vector collection {name!r} does not exist")
            embedder, dimension = str(meta["kgents_embedder"]), int(meta["kgents_dimension"])
            lexical = stored_lexical(meta)
            shard = await self._run(self._load_shard, name, dimension, True, lexical)
            opened = self._open[name] = _Collection(shard, embedder, dimension, lexical)
            return opened

    # -- VectorIndex ----------------------------------------------------------------------------------------

    async def ensure_collection(self, name: str, embedder: str, dimension: int, index_id: str | None = None) -> None:
        if dimension < 1:
            raise ValidationError(f"vector dimension must be positive (got {dimension})")
        meta = self._read_meta(name)
        if meta is not None:
            check_metadata(name, meta, embedder, dimension)
            if needs_stamp(name, meta, index_id):
                self._write_meta(name, {**meta, **metadata_for(embedder, dimension, index_id)})
        else:
            private_dir(self._dir(name))
            self._write_meta(name, {**metadata_for(embedder, dimension, index_id), META_LEXICAL: ANALYZER})
        await self._collection(name)

    def _write_meta(self, name: str, meta: dict[str, Any]) -> None:
        write_private(self._dir(name) / META_FILE, json.dumps(meta))

    async def index_id(self, name: str) -> str | None:
        meta = self._read_meta(name)
        if meta is None:
            raise NotFoundError(f"vector collection {name!r} does not exist")
        return stored_index_id(meta)

    async def collections(self) -> list[CollectionInfo]:
        base = self.root / "collections"
        names = sorted(p.name for p in base.iterdir() if (p / META_FILE).exists()) if base.exists() else []
        infos = []
        for name in names:
            col = await self._collection(name)
            async with col.gate.read():
                info = await self._run(col.shard.info)
            extra = {
                "indexed_vectors": int(info.indexed_vectors_count),
                "segments": int(info.segments_count),
                "building": col.build is not None,
            }
            infos.append(CollectionInfo(name, col.embedder, col.dimension, int(info.points_count), extra))
        return infos

    async def drop_collection(self, name: str) -> None:
        folder = self._dir(name)
        col = self._open.pop(name, None)
        if col is not None:
            await self._stop_build(col)
            async with col.write_lock, col.gate.exclusive():
                await self._run(col.shard.close)
        await asyncio.to_thread(shutil.rmtree, folder, True)

    async def upsert(self, collection: str, points: Sequence[IndexPoint]) -> int:
        col = await self._collection(collection)
        if not points:
            return 0
        prepared = [(p, check_vector(p.vector, col.dimension)) for p in points]
        vectors = {p.id: v for p, v in prepared}

        done: list[qe.UpdateOperation] = []

        def write() -> int:
            """Read the stored versions and write, in one hand-off to the worker thread."""
            stored = versions_of(col.shard.retrieve(list(vectors), ["version"], False))
            todo = plan_writes([p for p, _ in prepared], stored)
            # New ids go in insert-only (a guard filter halves write speed and has nothing to guard there);
            # existing ones carry the engine-side `version <= new` condition.
            fresh = [point(p, vectors[p.id], col.lexical) for p in todo if p.id not in stored]
            if fresh:
                done.append(qe.UpdateOperation.upsert_points(fresh, update_mode=qe.UpdateMode.InsertOnly))
                col.shard.update(done[-1])
            known = [p for p in todo if p.id in stored]
            if known:
                batch = [point(p, vectors[p.id], col.lexical) for p in known]
                guard = qe.Filter(should=[not_newer(p.id, p.payload.version) for p in known])
                done.append(qe.UpdateOperation.upsert_points(batch, condition=guard))
                col.shard.update(done[-1])
            return len(todo)

        async with col.write_lock:
            try:
                # a few points are written on the event loop: cheaper than the hand-off to a thread
                count = write() if len(points) <= INLINE_WRITE and not self._closed else await self._run(write)
            finally:  # a copy being optimised replays whatever reached the live shard
                if col.replay is not None:
                    col.replay.extend(done)
        col.written_since_check += count
        if col.written_since_check >= BUILD_CHECK_EVERY:
            col.written_since_check = 0
            await self._maybe_build(collection, col)
        return count

    async def set_payload(self, collection: str, entry_id: uuid.UUID, payload: PointPayload) -> bool:
        col = await self._collection(collection)
        async with col.write_lock:
            stored = await self._stored_versions(col, [entry_id])
            if entry_id not in stored or stored[entry_id] > payload.version:
                return False
            guard = not_newer(entry_id, payload.version)
            await self._apply(col, qe.UpdateOperation.overwrite_payload_by_filter(guard, payload.to_dict()))
            return True

    async def delete(self, collection: str, ids: Sequence[uuid.UUID]) -> None:
        col = await self._collection(collection)
        if not ids:
            return
        async with col.write_lock:
            await self._apply(col, qe.UpdateOperation.delete_points(list(ids)))

    async def retrieve(self, collection: str, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, PointPayload]:
        col = await self._collection(collection)
        if not ids:
            return {}
        with_vector = [LEXICAL_VECTOR] if col.lexical else False
        async with col.gate.read():
            records = await self._run(col.shard.retrieve, list(ids), True, with_vector)
        return {
            parse_id(r.id): lexical_flagged(
                PointPayload.from_dict(r.payload or {}), not col.lexical or LEXICAL_VECTOR in (r.vector or {})
            )
            for r in records
        }

    async def search(
        self,
        collection: str,
        vector: Sequence[float] | npt.NDArray[np.float32],
        persona: str,
        flt: EntryFilter,
        limit: int = 10,
        score_threshold: float | None = None,
    ) -> list[IndexHit]:
        col = await self._collection(collection)
        check_limit(limit)
        request = qe.QueryRequest(
            limit=limit,
            query=qe.Query.Nearest(check_vector(vector, col.dimension)),
            filter=search_filter(persona, flt),
            score_threshold=score_threshold,
            with_payload=True,
            with_vector=False,
        )
        async with col.gate.read():
            hits = self._search(lambda: col.shard.query(request))
        return [IndexHit(parse_id(h.id), float(h.score), PointPayload.from_dict(h.payload or {})) for h in hits]

    async def versions(self, collection: str) -> dict[uuid.UUID, tuple[str, int]]:
        col = await self._collection(collection)
        out: dict[uuid.UUID, tuple[str, int]] = {}
        offset: Any = None
        async with col.gate.read():  # one gate for the whole scroll: a swap mid-scroll would lose the cursor
            while True:
                request = qe.ScrollRequest(
                    offset=offset, limit=SCROLL_PAGE, with_payload=["persona", "version"], with_vector=False
                )
                records, offset = await self._run(col.shard.scroll, request)
                for r in records:
                    payload = r.payload or {}
                    out[parse_id(r.id)] = (str(payload.get("persona", "")), int(payload.get("version", -1)))
                if offset is None:
                    break
            if col.lexical:  # a point without its lexical vector is stale
                for entry_id in await self._run(ids_without_lexical, col.shard, SCROLL_PAGE):
                    out[entry_id] = (out.get(entry_id, ("", -1))[0], -1)
        return out

    # -- LexicalIndex ---------------------------------------------------------------------------------------

    async def has_lexical(self, collection: str) -> bool:
        return (await self._collection(collection)).lexical

    async def search_signals(
        self,
        collection: str,
        vector: Sequence[float] | npt.NDArray[np.float32] | None,
        terms: SparseTerms | None,
        persona: str,
        flt: EntryFilter,
        limit: int = 10,
    ) -> tuple[list[RankedHit], list[RankedHit]]:
        col = await self._collection(collection)
        check_limit(limit)
        wanted = col.lexical and terms is not None and bool(terms)
        requests = signal_requests(
            None if vector is None else check_vector(vector, col.dimension),
            terms if wanted else None,
            search_filter(persona, flt),
            limit,
        )
        if not requests:
            return [], []
        async with col.gate.read():
            # Two plain queries beat the engine's query_batch here (1.4 vs 1.7 ms at 10k).
            answers = self._search(lambda: [col.shard.query(r) for r in requests])
        return ranked(answers, vector is not None, terms if wanted else None)

    async def drop_lexical(self, collection: str, ids: Sequence[uuid.UUID]) -> None:
        col = await self._collection(collection)
        if col.lexical and ids:
            async with col.write_lock:
                await self._apply(col, qe.UpdateOperation.delete_vectors(list(ids), [LEXICAL_VECTOR]))

    async def count(self, collection: str) -> int:
        col = await self._collection(collection)
        async with col.gate.read():
            return int(await self._run(col.shard.count, qe.CountRequest(exact=True)))

    async def close(self) -> None:
        if self._closed:
            return
        try:
            for col in self._open.values():
                await self._stop_build(col)
                async with col.write_lock, col.gate.exclusive():
                    await asyncio.to_thread(col.shard.flush)
                    await asyncio.to_thread(col.shard.close)
            self._open.clear()
        finally:
            self._closed = True
            self._lock.release()

    # -- HNSW in the background -----------------------------------------------------------------------------

    async def optimize(self, collection: str) -> bool:
        """Build the HNSW graph now, off this process (see `edge_build`); True if a new shard was swapped in.

        Searches keep running meanwhile; writes wait only while the shard is copied and swapped."""
        col = await self._collection(collection)
        if col.build is None:
            col.build = asyncio.create_task(self._build_and_swap(collection, col))
        return await asyncio.shield(col.build)

    async def _maybe_build(self, name: str, col: _Collection) -> None:
        if self.auto_build_after is None or col.build is not None:
            return
        async with col.gate.read():
            info = await self._run(col.shard.info)
        unindexed = int(info.points_count) - int(info.indexed_vectors_count)
        if unindexed >= max(self.auto_build_after, col.next_build_at):
            # If the engine finds nothing to build (segments under its indexing threshold), wait for as many
            # new points again before trying, instead of copying the shard every BUILD_CHECK_EVERY writes.
            col.next_build_at = unindexed + self.auto_build_after
            col.build = asyncio.create_task(self._build_and_swap(name, col))
            col.build.add_done_callback(_log_build_failure)

    async def _stop_build(self, col: _Collection) -> None:
        task = col.build
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _apply(self, col: _Collection, operation: qe.UpdateOperation) -> None:
        """Apply a write (the caller holds `write_lock`); remember it if a copy is being optimised."""
        await self._run(col.shard.update, operation)
        if col.replay is not None:
            col.replay.append(operation)

    async def _build_and_swap(self, name: str, col: _Collection) -> bool:
        folder = self._dir(name)
        live, build, old = folder / LIVE, folder / BUILD, folder / OLD
        try:
            async with col.write_lock:
                await self._run(col.shard.flush)
                await asyncio.to_thread(shutil.rmtree, build, True)
                await asyncio.to_thread(shutil.copytree, live, build)
                col.replay = []
            if not await optimise_copy(build, self.build_timeout_s):
                return False
            col.next_build_at = 0
            async with col.write_lock, col.gate.exclusive():
                replay, col.replay = col.replay or [], None
                await self._run(col.shard.close)
                live.rename(old)
                build.rename(live)
                try:
                    shard = await self._run(self._load_shard, name, col.dimension, False, col.lexical)
                    for operation in replay:
                        await self._run(shard.update, operation)
                except BaseException:
                    # Back to the old shard, which already holds every write.
                    shutil.rmtree(live, ignore_errors=True)
                    old.rename(live)
                    col.shard = await asyncio.to_thread(self._load_shard, name, col.dimension, False, col.lexical)
                    raise
                col.shard = shard
            await asyncio.to_thread(shutil.rmtree, old, True)
            return True
        finally:
            col.replay = None
            col.build = None
            await asyncio.to_thread(shutil.rmtree, build, True)

    async def _stored_versions(self, col: _Collection, ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
        return versions_of(await self._run(col.shard.retrieve, ids, ["version"], False))


def _log_build_failure(task: asyncio.Task[bool]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("background vector index build failed: %s", task.exception())

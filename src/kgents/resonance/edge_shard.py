"""The embedded index's collections on disk: their folders and meta files, opening their edge shards, and the
background HNSW build that swaps an optimised shard in.

Layout: `index/owner.lock` (see `lock.py`), and per collection `index/collections/<name>/shard/` (one edge
shard) beside `kgents.json` (the embedder and dimension it was built for). One process owns the whole
directory.

HNSW: edge shards keep new points in plain segments (exact search: p50 12 ms at 100k points of 256-d here)
until an optimisation builds the graph (p50 ~1 ms). `EdgeShard.optimize()` holds the GIL for its whole run (a
minute at 100k), so it never runs in this process: `edge_build.py` optimises a copy in a child process and
swaps it in. It starts by itself once `auto_build_after` dense vectors are outside the graph (counted as
`edge_graph.py` says: the engine's own count includes the lexical vectors), or on `build_graph()`.

`EdgeShards` keeps the open collections of one index directory; `edge.py` answers the `VectorIndex` calls on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import qdrant_edge as qe

from kgents.errors import BackendUnavailableError, NotFoundError
from kgents.home import private_dir, write_private
from kgents.resonance.edge_build import BUILD, LIVE, OLD, ReadGate, optimise_copy, recover
from kgents.resonance.edge_graph import GRAPH_META, GraphBook
from kgents.resonance.edge_guard import DiskGuard, flush_or_say, load_or_rebuild
from kgents.resonance.edge_lexical import LEXICAL_PARAMS
from kgents.resonance.index_common import PAYLOAD_INDEXES, check_collection_name, stored_lexical
from kgents.resonance.lexical import LEXICAL_VECTOR
from kgents.resonance.protocols import IndexGraph

T = TypeVar("T")

_SCHEMA = {
    "keyword": qe.PayloadSchemaType.Keyword,
    "float": qe.PayloadSchemaType.Float,
    "integer": qe.PayloadSchemaType.Integer,
}
META_FILE = "kgents.json"
DEFAULT_AUTO_BUILD_AFTER = 20_000
"""Unindexed points that start a background HNSW build (about where exact search passes a few ms)."""
BUILD_CHECK_EVERY = 1_000
DEFAULT_BUILD_TIMEOUT_S = 3_600.0

FULL_SCAN_KB = 10_000
"""Segments smaller than this are scanned, not searched through their graph (the engine's default)."""


def hnsw(full_scan_kb: int = FULL_SCAN_KB) -> qe.HnswIndexConfig:
    """Qdrant's defaults, but the build leaves one core to the searches."""
    threads = max(1, (os.cpu_count() or 2) - 1)
    return qe.HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=full_scan_kb, max_indexing_threads=threads)


INT8 = qe.ScalarQuantizationConfig(qe.ScalarType.Int8, quantile=0.99, always_ram=True)
"""`int8`: the graph searches int8 copies held in RAM, rescored on the float originals (left on disk)."""
DEFAULT_INT8 = True
"""New collections keep int8 copies (issue 17, bench/recall.py --graph against --int8 on LoCoMo dev: recall_any@10
57.6 → 58.6 dense, 75.7 → 76.2 hybrid; bench/scale.py at 100k: RSS 739 → 596 MB, 146 MB of it the float vectors
that stay on disk, and +387 bytes per entry on disk). Collections made before keep their float-only layout."""

log = logging.getLogger(__name__)


class OpenCollection:
    """One open collection: its shard, what it was built for, and the locks and build state around the shard."""

    def __init__(
        self, shard: qe.EdgeShard, embedder: str, dimension: int, lexical: bool = False, book: GraphBook | None = None
    ) -> None:
        self.shard = shard
        self.book = book or GraphBook(gap=None)
        self.lexical = lexical
        self.embedder = embedder
        self.dimension = dimension
        self.write_lock = asyncio.Lock()
        self.gate = ReadGate()
        self.replay: list[qe.UpdateOperation] | None = None  # writes made while a copy is being optimised
        self.build: asyncio.Task[bool] | None = None
        self.written_since_check = 0
        self.next_build_at = 0  # dense vectors outside the graph before the next automatic build


class EdgeShards:
    """The collections under one index directory, opened on first use and kept open until `close()`."""

    def __init__(
        self,
        root: Path,
        *,
        auto_build_after: int | None = DEFAULT_AUTO_BUILD_AFTER,
        indexing_threshold_kb: int | None = None,
        build_timeout_s: float = DEFAULT_BUILD_TIMEOUT_S,
        int8: bool = DEFAULT_INT8,
        full_scan_kb: int | None = None,
    ) -> None:
        self.root = root
        self.int8 = int8
        self.hnsw = hnsw(full_scan_kb or FULL_SCAN_KB)
        self.auto_build_after = auto_build_after
        self.indexing_threshold_kb = indexing_threshold_kb
        self.build_timeout_s = build_timeout_s
        self._open: dict[str, OpenCollection] = {}
        self._opening = asyncio.Lock()  # one loader per shard: a second load in-process hits the WAL lock
        self.closed = False
        self.guard = DiskGuard(root)
        """Room checks before the engine touches its mapped files (a full disk is SIGBUS there, not an error)."""
        self.rebuilt: dict[str, str] = {}
        """Collections that could not be read and were made again, empty (name → the line saying so): their
        opener refills them from the anchor."""

    # -- folders and meta files -----------------------------------------------------------------------------

    def dir(self, name: str) -> Path:
        return self.root / "collections" / check_collection_name(name)

    def names(self) -> list[str]:
        """The collections on disk (those with a meta file), sorted."""
        base = self.root / "collections"
        return sorted(p.name for p in base.iterdir() if (p / META_FILE).exists()) if base.exists() else []

    def read_meta(self, name: str) -> dict[str, Any] | None:
        path = self.dir(name) / META_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise BackendUnavailableError(f"vector collection {name!r}: unreadable {META_FILE}: {exc}") from None
        return data if isinstance(data, dict) else None

    def write_meta(self, name: str, meta: dict[str, Any]) -> None:
        write_private(self.dir(name) / META_FILE, json.dumps(meta))

    # -- opening and closing --------------------------------------------------------------------------------

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn` on a worker thread, unless the index is closed."""
        if self.closed:
            raise BackendUnavailableError("the embedded vector index is closed")
        return await asyncio.to_thread(fn, *args, **kwargs)

    def _load_shard(self, name: str, dimension: int, fresh_start: bool = True, lexical: bool = False) -> qe.EdgeShard:
        if fresh_start:
            recover(self.dir(name))
        shard_dir = self.dir(name) / LIVE
        optimizers = None
        if self.indexing_threshold_kb is not None:
            optimizers = qe.EdgeOptimizersConfig(indexing_threshold=self.indexing_threshold_kb)
        quantized = self.int8 and not (shard_dir / "edge_config.json").exists()
        config = qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(
                size=dimension, distance=qe.Distance.Cosine, memory=qe.Memory.Cold if quantized else None
            ),
            quantization_config=INT8 if quantized else None,
            sparse_vectors={LEXICAL_VECTOR: LEXICAL_PARAMS} if lexical else None,
            optimizers=optimizers,
            hnsw_config=self.hnsw,
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

    async def get(self, name: str) -> OpenCollection:
        """The open collection `name`, opening its shard on first use; `NotFoundError` if it does not exist."""
        opened = self._open.get(name)
        if opened is not None:
            return opened
        async with self._opening:
            opened = self._open.get(name)
            if opened is not None:
                return opened
            meta = self.read_meta(name)
            if meta is None:
                raise NotFoundError(f"vector collection {name!r} does not exist")
            embedder, dimension = str(meta["kgents_embedder"]), int(meta["kgents_dimension"])
            lexical = stored_lexical(meta)
            shard = await self.run(load_or_rebuild, self, name, meta, dimension, lexical)
            info = shard.info()
            book = GraphBook.from_meta(meta, lexical, int(info.points_count), int(info.indexed_vectors_count))
            opened = self._open[name] = OpenCollection(shard, embedder, dimension, lexical, book)
            return opened

    async def drop(self, name: str) -> None:
        """Close the collection if open (its build stopped) and delete its folder."""
        folder = self.dir(name)
        col = self._open.pop(name, None)
        if col is not None:
            await self._stop_build(col)
            async with col.write_lock, col.gate.exclusive():
                await self.run(col.shard.close)
        await asyncio.to_thread(shutil.rmtree, folder, True)

    async def close(self) -> None:
        """Stop the builds, flush and close every open shard; closed afterwards even if one fails."""
        try:
            for name, col in self._open.items():
                await self._stop_build(col)
                self._keep_book(name, col)
                async with col.write_lock, col.gate.exclusive():
                    await asyncio.to_thread(flush_or_say, col.shard, name)
                    await asyncio.to_thread(col.shard.close)
            self._open.clear()
        finally:
            self.closed = True

    # -- writes and HNSW in the background ------------------------------------------------------------------

    async def apply(self, col: OpenCollection, operation: qe.UpdateOperation) -> None:
        """Apply a write (the caller holds `write_lock`); remember it if a copy is being optimised."""
        self.guard.check("write")
        await self.run(col.shard.update, operation)
        if col.replay is not None:
            col.replay.append(operation)

    async def written(self, name: str, col: OpenCollection, count: int) -> None:
        """Count `count` points written; every `BUILD_CHECK_EVERY` see whether a background build is due."""
        col.written_since_check += count
        if col.written_since_check >= BUILD_CHECK_EVERY:
            col.written_since_check = 0
            await self._maybe_build(name, col)

    async def optimize(self, name: str) -> bool:
        """Build the HNSW graph now, off this process (see `edge_build`); True if a new shard was swapped in.

        Searches keep running meanwhile; writes wait only while the shard is copied and swapped."""
        col = await self.get(name)
        if col.build is None:
            self._start_build(name, col)
        assert col.build is not None
        return await asyncio.shield(col.build)

    async def graph(self, name: str) -> IndexGraph:
        """The graph's state from the engine's counters (microseconds: no scan)."""
        col = await self.get(name)
        async with col.gate.read():
            info = col.shard.info()
        points, indexed = int(info.points_count), int(info.indexed_vectors_count)
        return col.book.state(points, indexed, col.lexical, self.auto_build_after)

    async def build_graph(self, name: str, *, now: bool = True, timeout_s: float | None = None) -> IndexGraph:
        """Wait for the running build, then, if `now`, build what is still outside the graph (a build that runs
        took only what its copy held); at most `timeout_s`, the state then. A build that failed raises here."""
        col = await self.get(name)
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        while True:
            task = col.build
            if task is None:
                if not (now and (await self.graph(name)).outside > 0):
                    return await self.graph(name)
                self._start_build(name, col)
                task, now = col.build, False  # ours copies the shard now: it takes all that is outside
            # else a build that copied the shard earlier runs: with `now`, one of ours follows it
            assert task is not None
            done, _ = await asyncio.wait({task}, timeout=None if deadline is None else max(0.0, deadline - loop.time()))
            if task not in done:
                return await self.graph(name)
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    def _start_build(self, name: str, col: OpenCollection, idle: bool = False) -> None:
        col.book.enter("copy")
        col.build = asyncio.create_task(self._build_and_swap(name, col, idle))
        col.build.add_done_callback(_log_build_failure)

    def _keep_book(self, name: str, col: OpenCollection) -> None:
        """What the graph's counts need across restarts, into the meta file (never fails a close)."""
        try:
            meta = self.read_meta(name)
            if meta is not None and meta.get(GRAPH_META) != (kept := col.book.to_meta()):
                self.write_meta(name, {**meta, GRAPH_META: kept})
        except Exception as exc:  # a read-only or full home: the counts are measured again by the next build
            log.warning("could not keep the vector index's graph counts of %s: %s", name, exc)

    async def _maybe_build(self, name: str, col: OpenCollection) -> None:
        if self.auto_build_after is None or col.build is not None:
            return
        async with col.gate.read():
            info = col.shard.info()  # microseconds: the engine's counters
        outside = col.book.outside(int(info.points_count), int(info.indexed_vectors_count), col.lexical)
        if outside >= max(self.auto_build_after, col.next_build_at):
            # If the engine finds nothing to build (segments under its indexing threshold), wait for as many
            # new points again before trying, instead of copying the shard every BUILD_CHECK_EVERY writes.
            col.next_build_at = outside + self.auto_build_after
            self._start_build(name, col, idle=True)  # nobody waits for it: at the lowest CPU priority

    async def _stop_build(self, col: OpenCollection) -> None:
        task = col.build
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _build_and_swap(self, name: str, col: OpenCollection, idle: bool) -> bool:
        folder = self.dir(name)
        live, build, old = folder / LIVE, folder / BUILD, folder / OLD
        swapped = False
        try:
            async with col.write_lock:
                await self.run(col.shard.flush)
                await asyncio.to_thread(shutil.rmtree, build, True)
                await asyncio.to_thread(self.guard.check_copy, live, "copy a collection to build its HNSW graph")
                await asyncio.to_thread(shutil.copytree, live, build)
                col.replay = []
                col.book.enter("graph", int(col.shard.info().points_count))
            built = await optimise_copy(build, self.build_timeout_s, col.lexical, idle)
            col.book.built(built, col.lexical)
            if not built.changed:
                return False
            col.next_build_at = 0
            col.book.enter("swap")
            await self._swap(name, col)
            swapped = True
            col.book.finished(swapped=True)
            self._keep_book(name, col)
            await asyncio.to_thread(shutil.rmtree, old, True)
            return True
        finally:
            if not swapped:
                col.book.finished(swapped=False)
            col.replay = None
            col.build = None
            await asyncio.to_thread(shutil.rmtree, build, True)

    async def _swap(self, name: str, col: OpenCollection) -> None:
        """Close the live shard, put the optimised copy in its place and replay the writes it missed."""
        folder = self.dir(name)
        live, build, old = folder / LIVE, folder / BUILD, folder / OLD
        async with col.write_lock, col.gate.exclusive():
            replay, col.replay = col.replay or [], None
            await self.run(col.shard.close)
            live.rename(old)
            build.rename(live)
            try:
                shard = await self.run(self._load_shard, name, col.dimension, False, col.lexical)
                for operation in replay:
                    await self.run(shard.update, operation)
            except BaseException:
                # Back to the old shard, which already holds every write.
                shutil.rmtree(live, ignore_errors=True)
                old.rename(live)
                col.shard = await asyncio.to_thread(self._load_shard, name, col.dimension, False, col.lexical)
                raise
            col.shard = shard


def _log_build_failure(task: asyncio.Task[bool]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("background vector index build failed: %s", task.exception())

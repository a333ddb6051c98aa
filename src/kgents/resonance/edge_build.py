"""Building the embedded index's HNSW graph without freezing the process that serves queries.

Measured on qdrant-edge 0.9: `EdgeShard.optimize()` holds the GIL for its whole run (about 20 s at 30k points
of 256-d, a minute at 100k), so running it on a thread of the serving process would stall every query. Instead
the owner copies the shard (a flushed, consistent copy taken while writes wait), a child process optimises the
copy, and the owner swaps it in during a short pause, replaying the writes that arrived meanwhile. Reads go on
during the build; only the copy (writes) and the swap (reads and writes, well under a second) wait.

Run as `python -m kgents.resonance.edge_build <shard dir> lexical|dense [idle]`: the child half. It prints one
JSON object: whether it built anything, and the copy's points, indexed vectors and non-empty lexical vectors after
the build (the engine's indexed count adds those to the dense vectors in the graph, see `edge_graph.py`).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kgents.errors import BackendUnavailableError

LIVE, BUILD, OLD = "shard", "shard.build", "shard.old"


class ReadGate:
    """Many readers at once, or one exclusive holder (the swap) once the readers in flight have finished."""

    def __init__(self) -> None:
        self._readers = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._open = asyncio.Event()
        self._open.set()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[None]:
        while not self._open.is_set():
            await self._open.wait()
        self._readers += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._readers -= 1
            if self._readers == 0:
                self._idle.set()

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        self._open.clear()
        try:
            while self._readers:
                await self._idle.wait()
            yield
        finally:
            self._open.set()


def recover(folder: Path) -> None:
    """Before opening a shard: finish or undo a swap that a crash cut short, drop a half-made build."""
    live, build, old = folder / LIVE, folder / BUILD, folder / OLD
    if not live.exists() and old.exists():
        old.rename(live)  # crashed between the two renames: the old shard is still whole
    shutil.rmtree(build, ignore_errors=True)
    if live.exists():
        shutil.rmtree(old, ignore_errors=True)


def _die_with_parent() -> None:
    """In the child before exec: Linux kills it if the owner dies (kill -9 included), so no orphan build
    keeps burning CPU; elsewhere the next owner simply discards the half-made copy."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


@dataclass(frozen=True, slots=True)
class Built:
    """What the child reports of the copy it optimised."""

    changed: bool
    """Whether it built or merged anything."""
    points: int
    indexed: int
    lexical: int
    """Points with a non-empty lexical vector."""


def lower_priority(idle: bool) -> None:
    """In the child: yield the CPU to the serving process. `idle` (a build that started by itself): Linux's
    SCHED_IDLE, the least weight the scheduler has (3 against a normal thread's 1,024: on 2 busy cores the
    writers keep their rate); else, or where SCHED_IDLE is missing, nice 10 (a build someone waits for).
    Threads the engine starts later inherit it."""
    import os

    if idle and hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return
        except OSError:
            pass
    os.nice(10)


async def optimise_copy(build: Path, timeout_s: float, lexical: bool, idle: bool = False) -> Built:
    """Optimise the shard copy at `build` in a child process (`lexical`: the collection keeps lexical vectors;
    `idle`: at the lowest CPU priority, `lower_priority`)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kgents.resonance.edge_build",
        str(build),
        "lexical" if lexical else "dense",
        *(["idle"] if idle else []),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except BaseException:  # cancelled or timed out: never leave the child running
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    if proc.returncode != 0:
        last = (err.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise BackendUnavailableError(f"building the vector index failed (exit {proc.returncode}): {last[:200]}")
    found = json.loads(out.decode().strip().splitlines()[-1])
    return Built(bool(found["changed"]), int(found["points"]), int(found["indexed"]), int(found["lexical"]))


def non_empty_lexical(shard: Any, page: int = 4096) -> int:
    """Points holding a non-empty lexical vector (a full scroll: the child's work, never a request's)."""
    import qdrant_edge as qe

    from kgents.resonance.lexical import LEXICAL_VECTOR

    found, offset = 0, None
    while True:
        request = qe.ScrollRequest(offset=offset, limit=page, with_payload=False, with_vector=[LEXICAL_VECTOR])
        records, offset = shard.scroll(request)
        for record in records:
            sparse = (record.vector or {}).get(LEXICAL_VECTOR)
            found += sparse is not None and len(sparse.indices) > 0
        if offset is None:
            return found


def _child(path: str, lexical: bool, idle: bool) -> None:
    import qdrant_edge as qe

    lower_priority(idle)  # the serving process keeps the CPU it needs; the graph can wait
    shard = qe.EdgeShard.load(path)
    try:
        changed = shard.optimize()
        shard.flush()
        info = shard.info()
        with_lexical = non_empty_lexical(shard) if lexical else 0
    finally:
        shard.close()
    found = {"changed": changed, "points": info.points_count, "indexed": info.indexed_vectors_count}
    print(json.dumps({**found, "lexical": with_lexical}))


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2:3] == ["lexical"], sys.argv[3:] == ["idle"])

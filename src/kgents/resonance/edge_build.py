"""Building the embedded index's HNSW graph without freezing the process that serves queries.

Measured on qdrant-edge 0.9: `EdgeShard.optimize()` holds the GIL for its whole run (about 20 s at 30k points
of 256-d, a minute at 100k), so running it on a thread of the serving process would stall every query. Instead
the owner copies the shard (a flushed, consistent copy taken while writes wait), a child process optimises the
copy, and the owner swaps it in during a short pause, replaying the writes that arrived meanwhile. Reads go on
during the build; only the copy (writes) and the swap (reads and writes, well under a second) wait.

Run as `python -m kgents.resonance.edge_build <shard dir>`: the child half. It prints 1 if it built anything.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

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


async def optimise_copy(build: Path, timeout_s: float) -> bool:
    """Optimise the shard copy at `build` in a child process; True if it built or merged anything."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kgents.resonance.edge_build",
        str(build),
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
    return out.decode().strip() == "1"


def _child(path: str) -> None:
    import os

    import qdrant_edge as qe

    os.nice(10)  # the serving process keeps the CPU it needs; the graph can wait
    shard = qe.EdgeShard.load(path)
    try:
        built = shard.optimize()
        shard.flush()
    finally:
        shard.close()
    print(1 if built else 0)


if __name__ == "__main__":
    _child(sys.argv[1])

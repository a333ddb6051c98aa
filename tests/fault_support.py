"""Faults for tests and the fault campaign (`bench/faults.py`), aimed at one process or one home only.

PostgreSQL: the backends serving one process (found by the local ports of its TCP sockets, from /proc) are
terminated, the way a restart drops them, without touching any other client of the shared server (never a restart
of the shared PostgreSQL: `tests.private_pg` runs a private cluster for that); an entry's advisory lock is held so
the server's inline apply waits between a write's commit and its answer. Disks: a small tmpfs mounted for a home
(skipped where mounting is not permitted) and filled; a writer that keeps writing while its disk fills.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg

from kgents.config import Settings
from kgents.loop_thread import LoopThread
from kgents.synapse.queue import lock_key
from tests.helpers import PG_URL, wait_until_sync
from tests.server_support import ServerProcess


async def rows_of(url: str, schema: str, entry_id: uuid.UUID) -> int:
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        return int(await conn.fetchval("SELECT count(*) FROM persona_garden WHERE id = $1", entry_id))
    finally:
        await conn.close()


def local_ports(pid: int) -> set[int]:
    """The local TCP ports of the sockets process `pid` holds open."""
    inodes: set[str] = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports: set[int] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


async def backends_of(admin: Any, pid: int) -> list[int]:
    """The PostgreSQL backend pids serving process `pid` (an asyncpg connection `admin` asks)."""
    ports = sorted(local_ports(pid))
    rows = await admin.fetch(
        "SELECT pid FROM pg_stat_activity WHERE client_port = ANY($1::int[]) AND pid <> pg_backend_pid()", ports
    )
    return [r["pid"] for r in rows]


async def terminate_backends_of(admin: Any, pid: int) -> int:
    """Terminate every backend serving process `pid`; how many there were."""
    backends = await backends_of(admin, pid)
    for backend in backends:
        await admin.fetchval("SELECT pg_terminate_backend($1)", backend)
    return len(backends)


class EntryHold:
    """A connection (on a loop of its own, so any thread may let go) holding an entry's advisory lock: the server's
    inline apply skips the entry and waits, between the write's commit and its answer."""

    def __init__(self, url: str, schema: str, entry_id: uuid.UUID) -> None:
        self._runner = LoopThread("entry-hold")
        self._conn: Any = self._runner.run(self._take(url, schema, lock_key(entry_id)))

    @staticmethod
    async def _take(url: str, schema: str, key: int) -> Any:
        conn = await asyncpg.connect(url, server_settings={"search_path": schema})
        await conn.execute("SELECT pg_advisory_lock($1)", key)
        return conn

    def release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):
                self._runner.run(conn.close(), timeout=10)
            self._runner.stop()


def kill_when_committed(server: ServerProcess, settings: Settings, entry_id: uuid.UUID) -> threading.Thread:
    """SIGKILL the server once the entry's delete has committed (its apply held up by the entry's lock), then let
    go of the lock."""
    holder = EntryHold(settings.postgres_url or PG_URL, settings.postgres_schema, entry_id)

    def gone() -> bool:
        return asyncio.run(rows_of(settings.postgres_url or PG_URL, settings.postgres_schema, entry_id)) == 0

    def kill() -> None:
        try:
            wait_until_sync(gone, timeout=60, what="the delete committed")
            server.proc.kill()
            server.proc.wait()
        finally:
            holder.release()

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


class CannotMount(Exception):
    """This process may not mount a filesystem here (the reason says why)."""


@contextlib.contextmanager
def small_disk(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `where`, unmounted afterwards; CannotMount where mounting is not permitted."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    if mounted.returncode != 0:
        raise CannotMount(f"cannot mount a small filesystem here: {mounted.stderr.decode().strip()[:120]}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(disk: Path, leave_bytes: int) -> Path:
    """A file taking all the free space of `disk` but `leave_bytes`."""
    import os

    stats = os.statvfs(disk)
    filler = disk / "filler"
    with filler.open("wb") as out:
        left = stats.f_bavail * stats.f_frsize - leave_bytes
        block = b"\0" * (1 << 20)
        while left > 0:
            out.write(block[: min(left, len(block))])
            left -= len(block)
    return filler


FULL_DISK_WRITER = r"""
# A Memory() writing 20 entries, then (once told the disk is full) 60 more; prints each id and what it was told.
import json, sys, time, uuid
from pathlib import Path
from kgents import Memory
from kgents.errors import NotIndexedError, StorageFullError
signals = Path(sys.argv[1])
outcomes = []
with Memory() as memory:  # KGENTS_PERSONA
    for phase, count in (("before", 20), ("full", 60)):
        if phase == "full":
            (signals / "ready").touch()
            while not (signals / "filled").exists():
                time.sleep(0.01)
        for i in range(count):
            entry_id = uuid.uuid4()
            try:
                memory.remember(f"{phase} note {i} " + "about the garden " * 20, entry_id=entry_id)
                outcome = "acknowledged"
            except NotIndexedError:
                outcome = "kept"
            except StorageFullError:
                outcome = "refused"
            outcomes.append([str(entry_id), outcome])
print(json.dumps(outcomes))
"""

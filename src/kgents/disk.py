"""Free space under KGENTS_HOME, and the one error a full disk is.

A full disk must be a clear answer (`StorageFullError`, its own exit code), never a dead process: SQLite reports
it as SQLITE_FULL and rolls the write back; the embedded index maps its files into memory, where a page the disk
cannot hold kills the process with SIGBUS, so `resonance.edge_guard` checks the room here before the index may
touch its files. On a filesystem whose pages are allocated when a mapping is merely read (tmpfs), every byte of a
sparse file may be claimed, so the room asked for there includes what the files may still grow into.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from kgents.errors import StorageFullError

FAULT_ALLOCATING = frozenset({"tmpfs", "ramfs", "shm", "hugetlbfs"})
"""Filesystems that allocate a mapped page on its first touch, read or write (a read of a hole elsewhere maps the
zero page)."""
MIB = 1024 * 1024


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still put on the filesystem holding `path` (its nearest existing
    ancestor)."""
    while not path.exists() and path.parent != path:
        path = path.parent
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def fs_type(path: Path, mountinfo: str | None = None) -> str:
    """The type of the filesystem holding `path` (`ext4`, `tmpfs`, …; `unknown` when it cannot be told), from the
    longest mount point above it in /proc/self/mountinfo."""
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError:
            return "unknown"
    target = str(path.absolute())
    best, kind = -1, "unknown"
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if " - " not in line or len(fields) < 5:
            continue
        point = fields[4].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) > best:
            best, kind = len(point), line.split(" - ", 1)[1].split(" ", 1)[0]
    return kind


def folder_bytes(path: Path) -> int:
    """Bytes of the files under `path` (the embedded index's folder; 0 when there is none)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def sparse_slack(folder: Path) -> int:
    """Bytes the files under `folder` may still claim: their sizes beyond the blocks they hold (sparse files
    mapped whole)."""
    slack = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                stats = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            slack += max(0, stats.st_size - stats.st_blocks * 512)
    return slack


def is_full(exc: BaseException) -> bool:
    """Whether `exc` says the disk (or the user's quota) is full."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


def shown(size: int) -> str:
    return f"{size / MIB:,.1f} MiB"


def full_error(where: Path, what: str, *, need: int | None = None) -> StorageFullError:
    """The one line for a full disk: what could not be written, where, how much is free (and needed)."""
    try:
        have = f"{shown(free_bytes(where))} free"
    except OSError:
        have = "no free space"
    wanted = f"; it needs {shown(need)}" if need is not None else ""
    return StorageFullError(
        f"the disk holding {where} is full ({have}{wanted}): {what}; free some space (or set KGENTS_HOME to a"
        " larger disk) and run it again"
    )

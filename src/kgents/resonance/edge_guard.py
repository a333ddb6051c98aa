"""Keeping the embedded index off a full disk, and rebuilding a collection it cannot read.

qdrant-edge maps its files into memory: sparse files of up to 32 MiB each (the WAL's segments, the vector chunks,
the payload pages) that it grows as it writes, and on a load too (a reopened collection claimed ~67 MiB more on
tmpfs). A page the disk cannot hold is no error there but SIGBUS: the writer died with no message, and every later
open died too, each open's regrowth filling the disk again. So, before a shard is loaded or created and before
each write, `DiskGuard.check` asks for the room the index may claim (`RESERVE_BYTES` for its next growth, plus,
where merely reading a mapped hole allocates it (tmpfs), the files' whole sparse slack): short of it, the index is
not touched and the caller gets a StorageFullError with its own exit code.

A load that failed, or that died (its marker file outlived the process that wrote it), is not tried again and
again: the collection is moved aside under `index/broken/` (or removed when the disk has no room for it) and made
again, empty; `rebuilt` names it with the reason, and the opener refills it from the anchor, the truth, saying so
in one line (`synapse.runtime.open_stack`). `kgents synapse reindex` does the same by hand.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kgents.disk import FAULT_ALLOCATING, MIB, folder_bytes, free_bytes, fs_type, full_error, sparse_slack
from kgents.errors import BackendUnavailableError
from kgents.home import private_dir, write_private

if TYPE_CHECKING:
    from kgents.resonance.edge_shard import EdgeShards

RESERVE_BYTES = 64 * MIB
"""Free space kept for the index's next growth: a new WAL segment and the pages of a large batch."""
RECHECK_EVERY = 256
"""Writes between two measurements of the files' sparse slack (each is a walk of the collection's folders)."""
OPENING = "opening"
"""A collection's marker while a process loads its shard: one left behind means that load died."""
BROKEN = "broken"

log = logging.getLogger("kgents.resonance")


class DiskGuard:
    """The room checks of one index directory (`root`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._allocating: bool | None = None
        self._slack = 0
        self._writes_left = 0

    @property
    def allocating(self) -> bool:
        """Whether the filesystem allocates a mapped page on a read (tmpfs): then all sparse slack counts."""
        if self._allocating is None:
            self._allocating = fs_type(self.root) in FAULT_ALLOCATING
        return self._allocating

    def need(self, *, fresh: bool = False) -> int:
        """Free bytes to keep before the index may touch its files (`fresh`: measure the slack now)."""
        if not self.allocating:
            return RESERVE_BYTES
        if fresh or self._writes_left <= 0:
            self._slack = sparse_slack(self.root / "collections") if (self.root / "collections").exists() else 0
            self._writes_left = RECHECK_EVERY
        return RESERVE_BYTES + self._slack

    def check_copy(self, folder: Path, what: str) -> None:
        """StorageFullError unless the disk holds a whole copy of `folder` (copied dense) and the room `check`
        asks for."""
        size = folder_bytes(folder)
        need = size + self.need(fresh=True)
        if free_bytes(self.root) < need:
            raise full_error(self.root, f"the embedded vector index did not {what}", need=need)

    def check(self, what: str) -> None:
        """StorageFullError (nothing touched) unless the disk has the room the index may claim; `what` says what
        was about to happen. A write costs one statvfs (and, every RECHECK_EVERY writes on tmpfs, a walk)."""
        self._writes_left -= 1
        need = self.need()
        if free_bytes(self.root) >= need:
            return
        need = self.need(fresh=True)  # the slack may have shrunk since it was measured
        if free_bytes(self.root) < need:
            raise full_error(self.root, f"the embedded vector index did not {what}", need=need)

    # -- loads that die or fail ----------------------------------------------------------------------------------
    def marker(self, folder: Path) -> Path:
        return folder / OPENING

    def died_opening(self, folder: Path) -> bool:
        """Whether a load of this collection began and never ended (the process died in it: SIGBUS, a kill)."""
        return self.marker(folder).exists()

    def opened(self, folder: Path) -> None:
        self.marker(folder).unlink(missing_ok=True)

    def move_aside(self, folder: Path, reason: str) -> str:
        """Move a collection that cannot be read out of the way (one copy kept under `broken/`, none when the
        disk has no room for it); the line that says so."""
        aside = self.root / BROKEN
        shutil.rmtree(aside, ignore_errors=True)  # an older broken copy: only the latest is kept
        aside.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = aside / f"{folder.name}-{time.strftime('%Y%m%dT%H%M%S')}"
        folder.rename(target)
        kept = f"moved aside to {target}"
        if free_bytes(self.root) < self.need(fresh=True):
            shutil.rmtree(aside, ignore_errors=True)
            kept = "removed it (no room to keep a copy)"
        line = (
            f"the embedded vector index could not read collection {folder.name} ({reason}); {kept}; it is made"
            " again and refilled from the anchor"
        )
        log.warning(line)
        return line


def engine_full(exc: BaseException) -> bool:
    """Whether the engine's own error (a bare Exception with its message) says the disk is full."""
    text = str(exc)
    return "No space left on device" in text or "os error 28" in text or "Disk quota exceeded" in text


def load_or_rebuild(shards: EdgeShards, name: str, meta: dict[str, Any], dimension: int, lexical: bool) -> Any:
    """Load (or create) collection `name`'s shard after checking the room; one whose load failed or died before
    is moved aside and made again, empty, and named in `shards.rebuilt` for the opener to refill."""
    folder = shards.dir(name)
    guard = shards.guard
    reason = "its last open never finished: the process died in it" if guard.died_opening(folder) else None
    if reason is None:
        guard.check(f"open collection {name}")
        try:
            return _load(shards, name, dimension, lexical)
        except BackendUnavailableError as exc:
            if engine_full(exc):
                raise full_error(guard.root, f"the embedded vector index could not open {name}") from None
            reason = str(exc)
    shards.rebuilt[name] = guard.move_aside(folder, reason)
    private_dir(folder)
    shards.write_meta(name, meta)
    guard.check(f"make collection {name} again")
    return _load(shards, name, dimension, lexical)


def _load(shards: EdgeShards, name: str, dimension: int, lexical: bool) -> Any:
    folder = shards.dir(name)
    write_private(shards.guard.marker(folder), f"{os.getpid()}\n")
    shard = shards._load_shard(name, dimension, True, lexical)
    shards.guard.opened(folder)
    return shard


def flush_or_say(shard: Any, name: str) -> None:
    """Flush a shard on the way out; a disk too full to take the flush is one line, not a failure: every write
    is in the shard's WAL already, and the next open replays it."""
    try:
        shard.flush()
    except Exception as exc:
        if not engine_full(exc):
            raise
        log.warning(
            "the embedded vector index could not flush collection %s (the disk is full); its WAL keeps"
            " every write for the next open",
            name,
        )

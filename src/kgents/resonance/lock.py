"""One owning process for the embedded vector index: an exclusive `flock` on a lock file that names the owner.

Why not rely on the engine: qdrant-edge refuses a second opener with a raw "failed to open WAL ...
WouldBlock", which tells a user nothing. We take our own lock first, so a second process gets
`IndexLockedError` naming the owner's pid, host and start time. The kernel drops the lock when the owner dies,
even by kill -9, so a crash never leaves the index stuck; the stale owner record is simply overwritten by the
next owner.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from kgents.errors import ConfigError, IndexLockedError
from kgents.home import FILE_MODE, private_dir, tighten


def describe_owner(info: dict[str, Any]) -> str:
    if not info:
        return "another process (it is starting up)"
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(info.get("started", 0))))
    return f"pid {info.get('pid', '?')} on {info.get('host', '?')} (since {started})"


class OwnerLock:
    """Held for the lifetime of an `EdgeIndex`; `release()` is idempotent."""

    def __init__(self, path: Path, what: str = "the embedded vector index") -> None:
        self.path = path
        self.what = what
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def read_owner(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def acquire(self) -> None:
        if self._fd is not None:
            return
        try:
            private_dir(self.path.parent)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise ConfigError(f"{self.what} at {self.path.parent} cannot be made: {exc.strerror or exc}") from None
            raise ConfigError(
                f"{self.what} at {self.path.parent} is not writable ({exc.strerror}); it needs a writable KGENTS_HOME"
            ) from None
        tighten(self.path, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            owner = describe_owner(self.read_owner())
            raise IndexLockedError(
                f"{self.what} at {self.path.parent} is in use by {owner}; stop that process, or run the real"
                " triad (KGENTS_QDRANT_URL) to share an index between processes",
                owner,
            ) from None
        except BaseException:
            os.close(fd)
            raise
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

"""KGENTS_HOME and what kgents keeps in it, readable by its owner only.

The home holds every memory (the anchor database, the index, the server token), so kgents makes it 0700 when it
creates it, and every folder it makes inside 0700 and every file 0600, whatever the umask: modes are set where a
path is created (`os.open` / `mkdir` with the mode, then `chmod`, since the umask may have masked it), never with
`os.umask`, which is process-global. A folder or file kgents keeps in an existing home is tightened when it is
opened (it is ours). The home itself, when it existed before with wider modes, is left as it is (it may be a
folder the user chose to share) and `home_exposure` says so in `kgents db info`.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from kgents.errors import ConfigError

DIR_MODE = 0o700
FILE_MODE = 0o600


def ensure_home(home: Path) -> Path:
    """Make KGENTS_HOME (0700, and any missing parent) if it does not exist; ConfigError naming the path when it
    cannot be made or is not a folder. An existing home keeps its modes (see `home_exposure`)."""
    try:
        _make_dirs(home)
    except OSError as exc:
        raise ConfigError(f"KGENTS_HOME {home} cannot be made: {exc.strerror or exc}") from None
    if not home.is_dir():
        raise ConfigError(f"KGENTS_HOME {home} is not a folder")
    return home


def private_dir(path: Path) -> Path:
    """`path` as a folder only its owner may enter: made 0700 (any missing parent too), or tightened to 0700 when
    it exists and is ours."""
    if not _make_dirs(path):
        tighten(path, DIR_MODE)
    return path


def _make_dirs(path: Path) -> bool:
    """Make `path` and its missing parents, each 0700; True if `path` was made here."""
    if path.is_dir():
        return False
    if path.parent != path and not path.parent.is_dir():
        _make_dirs(path.parent)
    try:
        path.mkdir(mode=DIR_MODE)
    except FileExistsError:  # another process made it meanwhile (or a file is in the way: the caller says so)
        return False
    os.chmod(path, DIR_MODE)  # the umask may have masked the mode; it only ever takes bits away, but be exact
    return True


def private_file(path: Path) -> Path:
    """`path` as a file only its owner may read: created empty with 0600 when missing, else tightened to 0600."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        tighten(path, FILE_MODE)
        return path
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path


def tighten(path: Path, mode: int) -> None:
    """Take group and other permissions away from `path` if it is ours and has any (nothing when it is gone, not
    ours, or on a read-only file system: reads still work there)."""
    try:
        info = path.stat()
    except OSError:
        return
    if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & 0o077:
        with contextlib.suppress(OSError):
            os.chmod(path, stat.S_IMODE(info.st_mode) & mode)


def home_exposure(home: Path) -> str | None:
    """A warning when other local users may enter KGENTS_HOME (group or other permissions on it), else None."""
    try:
        mode = stat.S_IMODE(home.stat().st_mode)
    except OSError:
        return None
    if not mode & 0o077:
        return None
    return (
        f"KGENTS_HOME {home} is {mode:04o}: other local users may enter it (kgents keeps its own files in it"
        f" owner-only); `chmod 700 {home}` keeps it yours"
    )


def write_private(path: Path, text: str, *, exclusive: bool = False) -> None:
    """Write `text` to `path` (its folder exists) atomically, readable by its owner only (0600 from the first
    byte); `exclusive`: only when no `path` exists yet (FileExistsError otherwise: of two processes writing it at
    once, the first one's stays)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    try:
        try:
            os.fchmod(fd, FILE_MODE)
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            os.link(tmp, path)
            tmp.unlink()
        else:
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise

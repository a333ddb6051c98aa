"""The embedded anchor: one SQLite database in WAL mode under `KGENTS_HOME`.

sqlite3 is blocking, so each `SqliteAnchor` owns one connection on one worker thread and the async API hands it
work; within a process that serialises writes, across processes SQLite's locks (with a busy timeout) do.
Writes use `BEGIN IMMEDIATE` so two processes never deadlock upgrading a read lock. Reads that need not follow
this process's queued writes go through `read`: a read-only connection on a thread of its own, so a read never
waits behind a write that waits (up to BUSY_TIMEOUT_MS) for another process's write lock (WAL: readers never
wait for a writer).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from kgents.anchor.migrations import load_migrations, pending_migrations
from kgents.disk import full_error, is_full
from kgents.errors import BackendUnavailableError, ConfigError
from kgents.home import FILE_MODE, ensure_home, private_file, tighten

T = TypeVar("T")

BUSY_TIMEOUT_MS = 15_000
RELAXED = frozenset({"NORMAL", "OFF", "1", "0"})
"""`synchronous` settings whose commits already skip the disk wait."""


class SqliteAnchor:
    """A SQLite database, migrated, reachable from async code."""

    def __init__(self, path: Path, *, synchronous: str = "FULL") -> None:
        self.path = path
        self._synchronous = synchronous
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kgents-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._reads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kgents-sqlite-read")
        self._reader: sqlite3.Connection | None = None
        self._closed = False
        self.read_only = False
        """True when the database (or its folder) is not writable: reads work, writes raise ConfigError."""

    @classmethod
    async def open(cls, path: Path, *, migrate: bool = True) -> SqliteAnchor:
        anchor = cls(path)
        try:
            await anchor.run(anchor._connect)
            if migrate:
                await anchor.run(anchor._migrate)
        except BaseException:
            await anchor.close()
            raise
        return anchor

    def _connect(self) -> None:
        if not _writable(self.path):
            self._connect_read_only()
            return
        ensure_home(self.path.parent)
        try:
            private_file(self.path)  # SQLite gives the -wal and -shm files the database file's mode
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        except (OSError, sqlite3.Error) as exc:
            if is_full(exc):
                raise full_error(self.path, "the anchor database cannot be made") from None
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise ConfigError(f"KGENTS_HOME: cannot open the anchor database {self.path}: {reason}") from None
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:  # the permission check could not tell (e.g. a read-only mount)
            conn.close()
            if is_full(exc):
                raise full_error(self.path, "the anchor database cannot be opened") from None
            if not _is_read_only_error(exc):
                raise
            self._connect_read_only()
            return
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        for suffix in ("-wal", "-shm"):  # made by an older kgents with the umask's modes: ours, so tightened
            tighten(self.path.with_name(self.path.name + suffix), FILE_MODE)
        self._setup(conn)

    def _connect_read_only(self) -> None:
        """Open a database we may not write: reads work, any write is a ConfigError naming the path."""
        if not self.path.is_file():
            raise ConfigError(f"KGENTS_HOME: {self.path.parent} is not writable, so the anchor database cannot be made")
        self.read_only = True
        wal = self.path.with_name(self.path.name + "-wal")
        # immutable=1 reads a WAL database whose -shm cannot be made, but would miss changes still in the -wal file
        tries = ("mode=ro",) if wal.exists() and wal.stat().st_size else ("mode=ro", "mode=ro&immutable=1")
        for flags in tries:
            uri = f"{self.path.resolve().as_uri()}?{flags}"
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.OperationalError:
                conn.close()
                continue
            conn.execute("PRAGMA query_only = ON")
            self._setup(conn)
            return
        raise ConfigError(f"KGENTS_HOME: cannot read the anchor database {self.path} (and its folder is not writable)")

    def _setup(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        # transient b-trees (the triggers' and json_each's) in memory, not in temporary files: about a quarter off
        # a batch insert; nothing durable lives there
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.create_function("kgents_contains", 2, _contains, deterministic=True)
        self._conn = conn

    def not_writable(self) -> ConfigError:
        return ConfigError(f"KGENTS_HOME: {self.path} is not writable (this command needs to write)")

    @property
    def conn(self) -> sqlite3.Connection:
        """The connection; only for functions running on the worker thread via `run`."""
        if self._conn is None:
            raise RuntimeError("the anchor is closed")
        return self._conn

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.submit(fn, *args)

    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Queue `fn` on the worker thread now, without waiting: anything run after this call runs after it."""
        return asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(connection)` on the read-only connection, on its own thread (see the module's doc). What it reads
        is what was committed when it runs: a write this process queued with `submit` may not be in it yet."""
        if self.read_only:  # a home we may not write: its one connection is read-only already
            return await self.run(lambda: fn(self.conn))
        return await asyncio.get_running_loop().run_in_executor(self._reads, self._read, fn)

    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise RuntimeError("the anchor is closed")
        if self._reader is None:
            uri = f"{self.path.resolve().as_uri()}?mode=ro"
            reader = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
            reader.execute("PRAGMA query_only = ON")
            reader.execute("PRAGMA temp_store = MEMORY")
            reader.create_function("kgents_contains", 2, _contains, deterministic=True)
            self._reader = reader
        return fn(self._reader)

    @contextmanager
    def write(self, *, durable: bool = True) -> Any:
        """A write transaction on the worker thread: commit on success, roll back on any error.

        `durable=False`: the commit does not wait for the disk (`synchronous = NORMAL` for this transaction):
        it survives a crash of the process, and a crash of the machine may undo it (never corrupts; the next
        durable commit makes it durable too). Only for bookkeeping whose loss repeats idempotent work, such as
        removing outbox rows already applied (lost, they are applied once more)."""
        conn = self.conn
        if self.read_only:
            raise self.not_writable()
        relaxed = not durable and self._synchronous.upper() not in RELAXED
        if relaxed:
            conn.execute("PRAGMA synchronous = NORMAL")
        try:
            with self._transaction(conn) as tx:
                yield tx
        finally:
            if relaxed:
                conn.execute(f"PRAGMA synchronous = {self._synchronous}")

    @contextmanager
    def _transaction(self, conn: sqlite3.Connection) -> Any:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if _is_read_only_error(exc):
                raise self.not_writable() from None
            if is_full(exc):
                raise full_error(self.path, "nothing was written") from None
            raise BackendUnavailableError(
                f"KGENTS_HOME: the anchor database {self.path} stayed busy for {BUSY_TIMEOUT_MS // 1000} s"
                f" (another process holds its write lock): {exc}"
            ) from None
        try:
            yield conn
            conn.execute("COMMIT")  # a commit the disk cannot take (SQLITE_FULL) is rolled back whole
        except sqlite3.OperationalError as exc:
            _roll_back(conn)
            if _is_read_only_error(exc):
                raise self.not_writable() from None
            if is_full(exc):
                raise full_error(self.path, "the write was not kept") from None
            raise
        except BaseException:
            _roll_back(conn)
            raise

    def _applied(self) -> set[int]:
        if self.read_only:
            known = self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'")
            if known.fetchone() is None:
                return set()
            return {int(r[0]) for r in self.conn.execute("SELECT version FROM schema_version")}
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version"
            " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        return {int(r[0]) for r in self.conn.execute("SELECT version FROM schema_version")}

    def _current_version(self) -> int:
        return max(self._applied(), default=0)

    def _migrate(self) -> list[str]:
        applied: list[str] = []
        if self.read_only:  # nothing to do is fine; anything to do needs a writable home
            if pending_migrations(load_migrations("sqlite"), self._applied(), str(self.path)):
                raise ConfigError(f"KGENTS_HOME: {self.path} is not writable and its schema needs migrating")
            return applied
        with self.write() as conn:
            for migration in pending_migrations(load_migrations("sqlite"), self._applied(), str(self.path)):
                for statement in _split_statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, name, applied_at)"
                    " VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now'))",
                    (migration.version, migration.name),
                )
                applied.append(f"{migration.version:04d}_{migration.name}")
        return applied

    async def migrate(self) -> list[str]:
        return await self.run(self._migrate)

    async def schema_version(self) -> int:
        return await self.run(self._current_version)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._reads, self._close_reader)
        self._reads.shutdown(wait=True)
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await loop.run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)

    def _close_reader(self) -> None:
        self._closed = True
        if self._reader is not None:
            reader, self._reader = self._reader, None
            reader.close()


def _writable(path: Path) -> bool:
    """Whether we may write the database and create its -wal/-shm files beside it (False on a read-only home)."""
    folder = path.parent
    while not folder.exists():  # the nearest existing ancestor decides whether the folder can be made
        if folder.parent == folder:
            return False
        folder = folder.parent
    if not folder.is_dir():  # a file in the way: opening fails with its own clear error
        return True
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    return not path.exists() or os.access(path, os.W_OK)


def _roll_back(conn: sqlite3.Connection) -> None:
    """Roll the open transaction back (SQLite may have done it already, e.g. after SQLITE_FULL)."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _is_read_only_error(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_READONLY or "readonly" in str(exc)


def _contains(haystack: str | None, needle: str | None) -> bool:
    """Case-insensitive substring test, Unicode-aware like PostgreSQL's lower() (SQLite's is ASCII only)."""
    return haystack is not None and needle is not None and needle.lower() in haystack.lower()


def _split_statements(sql: str) -> list[str]:
    """Whole statements of a migration (sqlite3 runs one at a time inside our transaction)."""
    statements: list[str] = []
    buffer = ""
    for line in sql.splitlines(keepends=True):
        if not buffer and line.lstrip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements

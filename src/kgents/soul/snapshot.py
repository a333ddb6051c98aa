"""The durable snapshot of every soul, in the anchor (SQLite or PostgreSQL): the copy that survives the Spark.

Stores keep the state's JSON text as is (byte for byte what the cache holds) and know nothing of its meaning.
Every write is a compare-and-set on the revision the writer read, so two processes saving the same soul at
once cannot lose an update: the loser gets False and retries on the fresh state.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Protocol, runtime_checkable

from kgents.anchor import postgres as pg
from kgents.anchor.handle import Anchor, PostgresAnchor
from kgents.anchor.sqlite import Database
from kgents.config import Settings


@runtime_checkable
class SnapshotStore(Protocol):
    """Persistence of soul snapshots, always within one persona."""

    @property
    def backend(self) -> str:
        """`sqlite` or `postgres`."""
        ...

    async def get(self, persona: str, soul_id: str) -> str | None:
        """The stored state JSON, or None if this soul was never saved."""
        ...

    async def put(self, persona: str, soul_id: str, revision: int, state_json: str, expected_revision: int) -> bool:
        """Store `state_json` at `revision` if the stored one is at `expected_revision` (0: none)."""
        ...

    async def delete(self, persona: str, soul_id: str) -> bool: ...

    async def souls(self, persona: str) -> list[tuple[str, int]]:
        """Every saved soul of the persona with its revision, by id."""
        ...

    async def revision(self, persona: str, soul_id: str) -> int | None:
        """The stored revision alone (one primary-key lookup): a cached state is served only at this revision."""
        ...

    async def close(self) -> None: ...


class SqliteSnapshotStore:
    """Snapshots in the embedded anchor database."""

    backend = "sqlite"

    def __init__(self, db: Database, *, owns_db: bool = False) -> None:
        self._db = db
        self._owns_db = owns_db

    @classmethod
    async def open(cls, settings: Settings) -> SqliteSnapshotStore:
        return cls(await Database.open(settings.sqlite_path), owns_db=True)

    async def get(self, persona: str, soul_id: str) -> str | None:
        def work(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(
                "SELECT state FROM soul_snapshot WHERE persona = ? AND soul_id = ?", (persona, soul_id)
            ).fetchone()
            return None if row is None else str(row[0])

        return await self._db.read(work)

    async def put(self, persona: str, soul_id: str, revision: int, state_json: str, expected_revision: int) -> bool:
        def work() -> bool:
            with self._db.write() as conn:
                if expected_revision == 0:
                    cursor = conn.execute(
                        "INSERT INTO soul_snapshot (persona, soul_id, revision, state) VALUES (?, ?, ?, ?)"
                        " ON CONFLICT (persona, soul_id) DO NOTHING",
                        (persona, soul_id, revision, state_json),
                    )
                else:
                    cursor = conn.execute(
                        "UPDATE soul_snapshot SET revision = ?, state = ?,"
                        " updated_at = strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')"
                        " WHERE persona = ? AND soul_id = ? AND revision = ?",
                        (revision, state_json, persona, soul_id, expected_revision),
                    )
                return bool(cursor.rowcount == 1)

        return await self._db.run(work)

    async def delete(self, persona: str, soul_id: str) -> bool:
        def work() -> bool:
            with self._db.write() as conn:
                cursor = conn.execute("DELETE FROM soul_snapshot WHERE persona = ? AND soul_id = ?", (persona, soul_id))
                return bool(cursor.rowcount == 1)

        return await self._db.run(work)

    async def souls(self, persona: str) -> list[tuple[str, int]]:
        def work(conn: sqlite3.Connection) -> list[tuple[str, int]]:
            rows = conn.execute(
                "SELECT soul_id, revision FROM soul_snapshot WHERE persona = ? ORDER BY soul_id", (persona,)
            ).fetchall()
            return [(str(r[0]), int(r[1])) for r in rows]

        return await self._db.read(work)

    async def revision(self, persona: str, soul_id: str) -> int | None:
        def work(conn: sqlite3.Connection) -> int | None:
            row = conn.execute(
                "SELECT revision FROM soul_snapshot WHERE persona = ? AND soul_id = ?", (persona, soul_id)
            ).fetchone()
            return None if row is None else int(row[0])

        return await self._db.read(work)

    async def close(self) -> None:
        if self._owns_db:
            await self._db.close()


class PostgresSnapshotStore:
    """Snapshots in the PostgreSQL anchor schema."""

    backend = "postgres"

    def __init__(self, pool: Any, *, owns_pool: bool = False) -> None:
        self._pool = pool
        self._owns_pool = owns_pool

    @classmethod
    async def open(cls, settings: Settings) -> PostgresSnapshotStore:
        assert settings.postgres_url is not None
        pool = await pg.create_pool(settings.postgres_url, settings.postgres_schema, max_size=4)
        try:
            await pg.migrate(pool, settings.postgres_schema)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, owns_pool=True)

    @pg.translate_errors
    async def get(self, persona: str, soul_id: str) -> str | None:
        value = await self._pool.fetchval(
            "SELECT state FROM soul_snapshot WHERE persona = $1 AND soul_id = $2", persona, soul_id
        )
        return None if value is None else str(value)

    @pg.translate_write_errors
    async def put(self, persona: str, soul_id: str, revision: int, state_json: str, expected_revision: int) -> bool:
        if expected_revision == 0:
            status = await self._pool.execute(
                "INSERT INTO soul_snapshot (persona, soul_id, revision, state) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (persona, soul_id) DO NOTHING",
                persona,
                soul_id,
                revision,
                state_json,
            )
            return bool(status == "INSERT 0 1")
        status = await self._pool.execute(
            "UPDATE soul_snapshot SET revision = $3, state = $4, updated_at = clock_timestamp()"
            " WHERE persona = $1 AND soul_id = $2 AND revision = $5",
            persona,
            soul_id,
            revision,
            state_json,
            expected_revision,
        )
        return bool(status == "UPDATE 1")

    @pg.translate_write_errors
    async def delete(self, persona: str, soul_id: str) -> bool:
        status = await self._pool.execute(
            "DELETE FROM soul_snapshot WHERE persona = $1 AND soul_id = $2", persona, soul_id
        )
        return bool(status == "DELETE 1")

    @pg.translate_errors
    async def souls(self, persona: str) -> list[tuple[str, int]]:
        rows = await self._pool.fetch(
            "SELECT soul_id, revision FROM soul_snapshot WHERE persona = $1 ORDER BY soul_id", persona
        )
        return [(str(r["soul_id"]), int(r["revision"])) for r in rows]

    @pg.translate_errors
    async def revision(self, persona: str, soul_id: str) -> int | None:
        value = await self._pool.fetchval(
            "SELECT revision FROM soul_snapshot WHERE persona = $1 AND soul_id = $2", persona, soul_id
        )
        return None if value is None else int(value)

    async def close(self) -> None:
        if self._owns_pool:
            await self._pool.close()


def snapshots_on(anchor: Anchor) -> SnapshotStore:
    """The soul snapshots on an opened anchor, sharing its connection or pool."""
    if isinstance(anchor, PostgresAnchor):
        return PostgresSnapshotStore(anchor.pool)
    return SqliteSnapshotStore(anchor)


async def open_snapshots(settings: Settings) -> SnapshotStore:
    """The snapshot store of the anchor the settings point at (migrated)."""
    if settings.postgres_url:
        return await PostgresSnapshotStore.open(settings)
    return await SqliteSnapshotStore.open(settings)

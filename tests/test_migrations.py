"""Versioned migrations: recorded, idempotent, and refusing a database newer than the code."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest

from kgents.anchor import postgres as pg
from kgents.anchor.migrations import load_migrations
from kgents.anchor.sqlite import Database
from kgents.errors import SchemaError
from tests.helpers import PG_URL


def test_migrations_are_numbered_alike_on_both_backends() -> None:
    sqlite_versions = [(m.version, m.name) for m in load_migrations("sqlite")]
    postgres_versions = [(m.version, m.name) for m in load_migrations("postgres", "kgents")]
    assert sqlite_versions == postgres_versions
    assert sqlite_versions[0] == (1, "garden")


async def test_sqlite_migrate_is_idempotent_and_recorded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = await Database.open(tmp_path / "a.db")
    try:
        latest = load_migrations("sqlite")[-1].version
        assert await db.schema_version() == latest
        assert await db.migrate() == []
    finally:
        await db.close()
    with sqlite3.connect(tmp_path / "a.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.execute("INSERT INTO schema_version VALUES (9999, 'future', 'now')")
    with pytest.raises(SchemaError, match=r"\[9999\].*upgrade kgents"):
        await Database.open(tmp_path / "a.db")


async def test_postgres_migrate_is_idempotent_and_recorded(pg_schema: str) -> None:
    pool = await pg.create_pool(PG_URL, pg_schema)
    try:
        first = await pg.migrate(pool, pg_schema)
        assert first[0] == "0001_garden"
        assert await pg.migrate(pool, pg_schema) == []
        assert await pg.schema_version(pool) == load_migrations("postgres", pg_schema)[-1].version
        await pool.execute("INSERT INTO schema_version (version, name) VALUES (9999, 'future')")
        with pytest.raises(SchemaError, match="upgrade kgents"):
            await pg.migrate(pool, pg_schema)
    finally:
        await pool.close()


async def test_postgres_triggers_guard_identity_and_version(pg_schema: str) -> None:
    from kgents.garden.postgres_store import PostgresGardenStore
    from kgents.garden.service import PersonaGarden

    store = await PostgresGardenStore.open(PG_URL, pg_schema)
    try:
        entry = await PersonaGarden(store, "kent").plant("Guarded", "VALUE")
        with pytest.raises(asyncpg.CheckViolationError, match="version"):
            await store.anchor.pool.execute("UPDATE persona_garden SET confidence = 0.9 WHERE id = $1", entry.id)
        with pytest.raises(asyncpg.CheckViolationError, match="never change"):
            await store.anchor.pool.execute(
                "UPDATE persona_garden SET persona = 'ada', version = version + 1 WHERE id = $1", entry.id
            )
        await store.anchor.pool.execute(
            "UPDATE persona_garden SET confidence = 0.9, version = version + 1 WHERE id = $1", entry.id
        )
        assert await store.outbox_depth() == 2
    finally:
        await store.close()


async def test_sqlite_triggers_guard_identity_and_version(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from kgents.garden.service import PersonaGarden
    from kgents.garden.sqlite_store import SqliteGardenStore

    store = await SqliteGardenStore.open(tmp_path / "a.db")
    try:
        entry = await PersonaGarden(store, "kent").plant("Guarded", "VALUE")
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / "a.db") as conn:
        with pytest.raises(sqlite3.IntegrityError, match="version"):
            conn.execute("UPDATE persona_garden SET confidence = 0.9 WHERE id = ?", (str(entry.id),))
        conn.execute("UPDATE persona_garden SET confidence = 0.9, version = version + 1 WHERE id = ?", (str(entry.id),))
        assert conn.execute("SELECT count(*) FROM garden_outbox").fetchone()[0] == 2

"""The server garden: `GardenStore` on PostgreSQL through an asyncpg pool.

`plant_many` goes through COPY into a temporary table and one INSERT … SELECT, so the triggers (outbox, audit) fire
for every row and a duplicate id rolls the whole batch back.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import asyncpg

from kgents.anchor import postgres as pg
from kgents.anchor.handle import PostgresAnchor
from kgents.anchor.migrations import check_schema_name
from kgents.errors import ConflictError
from kgents.garden.filters import EntryFilter
from kgents.garden.model import EntryType, GardenEntry, Lifecycle, check_persona
from kgents.garden.records import AuditRecord, GardenQuery, Glance, Lease, Neighboured, Operation, OutboxEvent
from kgents.garden.sql import (
    COLUMNS,
    INSERT_COLUMNS,
    Dialect,
    build_select,
    build_where,
    continue_versions,
    forget_statements,
    neighbour_lookups,
    nothing_to_forget,
    persona_known_sql,
)

if TYPE_CHECKING:
    from kgents.garden.dream_postgres import PostgresDreamLedger

DIALECT = Dialect(
    placeholder=lambda n: f"${n}",
    tags_contain="tags @> {p}::text[]",
    id_prefix="id::text LIKE {p}",
    text_contains="strpos(lower(content), lower({p})) > 0",
    encode_tags=list,
    encode_time=lambda value: value,
)

_INSERT = (
    f"INSERT INTO persona_garden ({INSERT_COLUMNS})"  # noqa: S608
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
)
_REPLACE = (
    "UPDATE persona_garden SET content = $3, entry_type = $4, lifecycle = $5, confidence = $6, last_nurtured = $8,"
    " eigenvector_affinities = $9, evidence = $10, tags = $11, version = $12"
    " WHERE id = $1 AND persona = $2 AND planted_at = $7 AND version = $13"
)
# COPY speaks binary and our jsonb codec is text, so affinities travel as text and are cast on the way in.
_CREATE_STAGING = (
    "CREATE TEMP TABLE kgents_plant (id UUID, persona TEXT, content TEXT, entry_type TEXT, lifecycle TEXT,"
    " confidence DOUBLE PRECISION, planted_at TIMESTAMPTZ, last_nurtured TIMESTAMPTZ, eigenvector_affinities TEXT,"
    " evidence TEXT[], tags TEXT[], version BIGINT, observed_at TIMESTAMPTZ) ON COMMIT DROP"
)
_INSERT_STAGED = (
    f"INSERT INTO persona_garden ({INSERT_COLUMNS}) SELECT id, persona, content, entry_type, lifecycle,"  # noqa: S608
    " confidence, planted_at, last_nurtured, eigenvector_affinities::jsonb, evidence, tags, version, observed_at"
    " FROM kgents_plant"
)
_INSERT_ONE = (
    f"INSERT INTO persona_garden ({INSERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"  # noqa: S608
    " greatest($12::bigint, (SELECT last_version + 1 FROM garden_tombstone WHERE id = $1::uuid)), $13)"
    " RETURNING version"
)
_TOMBSTONES = "SELECT id, last_version FROM garden_tombstone WHERE id = ANY($1::uuid[])"
_BULK_THRESHOLD = 64
"""From this many entries on, plant_many uses COPY instead of a prepared INSERT per row."""


def _row(entry: GardenEntry) -> tuple[Any, ...]:
    return (
        entry.id,
        entry.persona,
        entry.content,
        entry.entry_type.value,
        entry.lifecycle.value,
        entry.confidence,
        entry.planted_at,
        entry.nurtured_at,
        dict(entry.eigenvector_affinities),
        list(entry.evidence),
        list(entry.tags),
        entry.version,
        entry.observed,
    )


def _entry(row: Any) -> GardenEntry:
    return GardenEntry.stored(
        id=row["id"],
        persona=row["persona"],
        content=row["content"],
        entry_type=EntryType(row["entry_type"]),
        lifecycle=Lifecycle(row["lifecycle"]),
        confidence=float(row["confidence"]),
        planted_at=row["planted_at"],
        last_nurtured=row["last_nurtured"],
        eigenvector_affinities=row["eigenvector_affinities"],
        evidence=tuple(row["evidence"]),
        tags=tuple(row["tags"]),
        version=row["version"],
        observed_at=row["observed_at"],
    )


def _glance(row: Any) -> Glance:
    return Glance(row["content"], row["observed_at"], tuple(row["tags"]))


class PostgresGardenStore:
    """Garden entries in a PostgreSQL schema."""

    backend = "postgres"

    def __init__(self, pool: Any, schema: str) -> None:
        self._pool = pool
        self.schema = schema
        self._owns_pool = False

    @classmethod
    async def open(cls, url: str, schema: str, *, max_size: int = 10) -> PostgresGardenStore:
        check_schema_name(schema)
        pool = await pg.create_pool(url, schema, max_size=max_size)
        try:
            await pg.migrate(pool, schema)
        except BaseException:
            await pool.close()
            raise
        store = cls(pool, schema)
        store._owns_pool = True
        return store

    @property
    def anchor(self) -> PostgresAnchor:
        return PostgresAnchor(self._pool, self.schema)

    def dream_ledger(self) -> PostgresDreamLedger:
        """The dream's ledger in this schema, on the same pool."""
        from kgents.garden.dream_postgres import PostgresDreamLedger

        return PostgresDreamLedger(self._pool, self)

    @pg.translate_write_errors
    async def insert(self, entries: Sequence[GardenEntry], lease: Lease | None = None) -> list[GardenEntry]:
        if not entries:
            return []
        try:
            if len(entries) == 1:  # one round trip: the version continues a tombstone's in the statement itself
                version = await self._pool.fetchval(_INSERT_ONE, *_row(entries[0]))
                return [replace(entries[0], version=int(version))]
            async with self._pool.acquire() as conn, conn.transaction():
                tombstones = await conn.fetch(_TOMBSTONES, [e.id for e in entries])
                floors = {r["id"]: int(r["last_version"]) for r in tombstones}
                stored = continue_versions(entries, floors)
                rows = [_row(e) for e in stored]
                if len(rows) < _BULK_THRESHOLD:
                    await conn.executemany(_INSERT, rows)
                    return stored
                await conn.execute(_CREATE_STAGING)
                staged = [(*r[:8], json.dumps(r[8]), *r[9:]) for r in rows]
                await conn.copy_records_to_table("kgents_plant", records=staged, columns=INSERT_COLUMNS.split(", "))
                await conn.execute(_INSERT_STAGED)
                return stored
        except asyncpg.UniqueViolationError:
            raise ConflictError("nothing planted: an entry with one of these ids already exists") from None
        except asyncpg.CheckViolationError as exc:
            if "planted again" not in str(exc):
                raise
            raise ConflictError("nothing planted: one of these ids was deleted meanwhile; try again") from None

    @pg.translate_errors
    async def get(self, persona: str, entry_id: uuid.UUID) -> GardenEntry | None:
        row = await self._pool.fetchrow(
            f"SELECT {COLUMNS} FROM persona_garden WHERE id = $1 AND persona = $2",  # noqa: S608
            entry_id,
            persona,
        )
        return None if row is None else _entry(row)

    @pg.translate_errors
    async def get_many(self, persona: str, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, GardenEntry]:
        rows = await self._pool.fetch(
            # Joining the ids makes one primary-key lookup each; `id = ANY(...)` let the planner scan the persona.
            f"SELECT {COLUMNS} FROM unnest($2::uuid[]) AS k(id) JOIN persona_garden USING (id)"  # noqa: S608
            " WHERE persona = $1",
            persona,
            list(ids),
        )
        return {e.id: e for e in map(_entry, rows)}

    @pg.translate_errors
    async def get_with_neighbours(self, persona: str, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Neighboured]:
        rows = await self._pool.fetch(
            f"SELECT {COLUMNS}, {neighbour_lookups('g')}"  # noqa: S608
            " FROM unnest($2::uuid[]) AS k(id) JOIN persona_garden AS g USING (id) WHERE g.persona = $1",
            persona,
            list(ids),
        )
        return {r["id"]: Neighboured((r["before_id"], r["after_id"]), r, _entry, _glance) for r in rows}

    @pg.translate_write_errors
    async def replace(self, entry: GardenEntry, expected_version: int) -> bool:
        status = await self._pool.execute(_REPLACE, *_row(entry)[:12], expected_version)
        return bool(status == "UPDATE 1")

    @pg.translate_write_errors
    async def delete(self, persona: str, entry_id: uuid.UUID) -> bool:
        status = await self._pool.execute(
            "DELETE FROM persona_garden WHERE id = $1 AND persona = $2", entry_id, persona
        )
        return bool(status == "DELETE 1")

    @pg.translate_errors
    async def query(
        self, persona: str, flt: EntryFilter | None, page: GardenQuery | None = None, *, id_prefix: str | None = None
    ) -> list[GardenEntry]:
        sql, params = build_select(persona, flt, page or GardenQuery(), DIALECT, id_prefix)
        return [_entry(r) for r in await self._pool.fetch(sql, *params)]

    @pg.translate_errors
    async def count(self, persona: str, flt: EntryFilter | None = None) -> int:
        where, params = build_where(persona, flt, DIALECT)
        return int(await self._pool.fetchval(f"SELECT count(*) FROM persona_garden {where}", *params))  # noqa: S608

    @pg.translate_errors
    async def history(self, persona: str, entry_id: uuid.UUID) -> list[AuditRecord]:
        rows = await self._pool.fetch(
            "SELECT seq, entry_id, operation, entry_version, changed_at, old_row, new_row FROM garden_audit"
            " WHERE persona = $1 AND entry_id = $2 ORDER BY seq",
            persona,
            entry_id,
        )
        return [
            AuditRecord(
                seq=r["seq"],
                entry_id=r["entry_id"],
                operation=Operation(r["operation"]),
                version=r["entry_version"],
                changed_at=r["changed_at"],
                old=r["old_row"],
                new=r["new_row"],
            )
            for r in rows
        ]

    @pg.translate_errors
    async def outbox_peek(self, persona: str, limit: int = 100) -> list[OutboxEvent]:
        rows = await self._pool.fetch(
            "SELECT seq, entry_id, persona, operation, entry_version, created_at, attempts"
            " FROM garden_outbox WHERE persona = $1 ORDER BY seq LIMIT $2",
            check_persona(persona),
            limit,
        )
        return [
            OutboxEvent(
                seq=r["seq"],
                entry_id=r["entry_id"],
                persona=r["persona"],
                operation=Operation(r["operation"]),
                entry_version=r["entry_version"],
                created_at=r["created_at"],
                attempts=r["attempts"],
            )
            for r in rows
        ]

    @pg.translate_errors
    async def outbox_depth(self) -> int:
        return int(await self._pool.fetchval("SELECT count(*) FROM garden_outbox"))

    @pg.translate_errors
    async def personas(self) -> dict[str, int]:
        rows = await self._pool.fetch("SELECT persona, count(*) AS n FROM persona_garden GROUP BY persona ORDER BY 1")
        return {r["persona"]: r["n"] for r in rows}

    @pg.translate_write_errors
    async def forget_persona(self, persona: str, *, purge_history: bool = False) -> int:
        persona = check_persona(persona)
        async with self._pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval(persona_known_sql("$1"), persona):
                raise nothing_to_forget(persona)
            count = int(await conn.fetchval("SELECT count(*) FROM persona_garden WHERE persona = $1", persona))
            for statement in forget_statements("$1", purge_history):
                await conn.execute(statement, persona)
            await conn.execute(
                "INSERT INTO persona_tombstone (persona, entries, purged_history) VALUES ($1, $2, $3)",
                persona,
                count,
                purge_history,
            )
            return count

    async def schema_version(self) -> int:
        return await pg.schema_version(self._pool)

    async def close(self) -> None:
        if self._owns_pool:
            await self._pool.close()

"""The embedded garden: `GardenStore` on the SQLite anchor under `KGENTS_HOME`."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kgents.anchor.sqlite import Database
from kgents.clock import utcnow
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
    from kgents.garden.dream_sqlite import SqliteDreamLedger

_INSERT = f"INSERT INTO persona_garden ({INSERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"  # noqa: S608

_LEASE = (
    "UPDATE garden_outbox SET claimed_by = ?1, claimed_until = ?2 WHERE seq IN ("
    " SELECT o.seq FROM garden_outbox o WHERE o.entry_id IN (SELECT value FROM json_each(?4))"
    " AND (o.claimed_until IS NULL OR o.claimed_until < ?3)"
    " AND NOT EXISTS (SELECT 1 FROM garden_outbox b WHERE b.entry_id = o.entry_id"
    "   AND b.claimed_until >= ?3 AND b.claimed_by <> ?1))"
    " RETURNING seq, entry_id, persona, operation, entry_version, created_at, attempts"
)
"""The relay's lease rules (synapse.anchor_sqlite), applied to the rows of entries just written."""
_TOMBSTONES = "SELECT id, last_version FROM garden_tombstone WHERE id IN (SELECT value FROM json_each(?))"

_G_COLUMNS = ", ".join(f"g.{c}" for c in INSERT_COLUMNS.split(", ")[:-1]) + ", coalesce(g.observed_at, g.planted_at)"
"""The columns qualified (json_each has an `id` of its own)."""

_REPLACE = (
    "UPDATE persona_garden SET content = ?, entry_type = ?, lifecycle = ?, confidence = ?, last_nurtured = ?,"
    " eigenvector_affinities = ?, evidence = ?, tags = ?, version = ?"
    " WHERE id = ? AND persona = ? AND version = ?"
)


DIALECT = Dialect(
    placeholder=lambda n: f"?{n}",
    tags_contain=(
        "(SELECT count(DISTINCT t.value) FROM json_each(persona_garden.tags) t"
        " WHERE t.value IN (SELECT value FROM json_each({p}))) = json_array_length({p})"
    ),
    id_prefix="id LIKE {p}",
    text_contains="kgents_contains(content, {p})",
    encode_tags=lambda tags: json.dumps(list(tags)),
    encode_time=lambda value: _ts(value),
)


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _row(entry: GardenEntry) -> tuple[Any, ...]:
    return (
        str(entry.id),
        entry.persona,
        entry.content,
        entry.entry_type.value,
        entry.lifecycle.value,
        entry.confidence,
        _ts(entry.planted_at),
        _ts(entry.nurtured_at),
        json.dumps(dict(entry.eigenvector_affinities)),
        json.dumps(list(entry.evidence)),
        json.dumps(list(entry.tags)),
        entry.version,
        _ts(entry.observed),
    )


def _entry(row: Sequence[Any]) -> GardenEntry:
    return GardenEntry.stored(
        id=uuid.UUID(row[0]),
        persona=row[1],
        content=row[2],
        entry_type=EntryType(row[3]),
        lifecycle=Lifecycle(row[4]),
        confidence=float(row[5]),
        planted_at=datetime.fromisoformat(row[6]),
        last_nurtured=datetime.fromisoformat(row[7]),
        eigenvector_affinities=json.loads(row[8]),
        evidence=tuple(json.loads(row[9])),
        tags=tuple(json.loads(row[10])),
        version=row[11],
        observed_at=datetime.fromisoformat(row[12]),
    )


def _glance(row: Sequence[Any]) -> Glance:
    tags = row[10]
    return Glance(row[2], datetime.fromisoformat(row[12]), tuple(json.loads(tags)) if tags != "[]" else ())


def _json_or_none(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _event(r: Sequence[Any]) -> OutboxEvent:
    """An outbox row (seq, entry_id, persona, operation, entry_version, created_at, attempts)."""
    return OutboxEvent(
        seq=r[0],
        entry_id=uuid.UUID(r[1]),
        persona=r[2],
        operation=Operation(r[3]),
        entry_version=r[4],
        created_at=datetime.fromisoformat(r[5]),
        attempts=r[6],
    )


class SqliteGardenStore:
    """Garden entries in the embedded anchor database."""

    backend = "sqlite"

    def __init__(self, db: Database) -> None:
        self._db = db
        self._owns_db = False

    @classmethod
    async def open(cls, path: Path) -> SqliteGardenStore:
        db = await Database.open(path)
        store = cls(db)
        store._owns_db = True
        return store

    @property
    def anchor(self) -> Database:
        return self._db

    def dream_ledger(self) -> SqliteDreamLedger:
        """The dream's ledger in this database, on the same connection."""
        from kgents.garden.dream_sqlite import SqliteDreamLedger

        return SqliteDreamLedger(self._db, self)

    async def insert(self, entries: Sequence[GardenEntry], lease: Lease | None = None) -> list[GardenEntry]:
        keys = json.dumps([str(e.id) for e in entries])

        def work() -> list[GardenEntry]:
            try:
                with self._db.write() as conn:
                    floors = {uuid.UUID(r[0]): int(r[1]) for r in conn.execute(_TOMBSTONES, (keys,))}
                    stored = continue_versions(entries, floors)
                    conn.executemany(_INSERT, [_row(e) for e in stored])
                    if lease is not None:
                        now = utcnow()
                        until = _ts(now + timedelta(seconds=lease.seconds))
                        leased = conn.execute(_LEASE, (lease.owner, until, _ts(now), keys)).fetchall()
                        lease.leased[:] = [_event(r) for r in leased]
                    return stored
            except sqlite3.IntegrityError as exc:
                raise ConflictError(f"nothing planted: {_explain_integrity(exc)}") from None

        return await self._db.run(work)

    async def get(self, persona: str, entry_id: uuid.UUID) -> GardenEntry | None:
        sql = f"SELECT {COLUMNS} FROM persona_garden WHERE id = ? AND persona = ?"  # noqa: S608
        row = await self._db.read(lambda c: c.execute(sql, (str(entry_id), persona)).fetchone())
        return None if row is None else _entry(row)

    async def get_many(self, persona: str, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, GardenEntry]:
        keys = json.dumps([str(i) for i in ids])
        # CROSS JOIN fixes the loop order: one primary-key lookup per id, never a scan of the persona's rows.
        sql = (
            f"SELECT {_G_COLUMNS} FROM json_each(?) AS k CROSS JOIN persona_garden AS g ON g.id = k.value"  # noqa: S608
            " WHERE g.persona = ?"
        )
        rows = await self._db.read(lambda c: c.execute(sql, (keys, persona)).fetchall())
        return {e.id: e for e in map(_entry, rows)}

    async def get_with_neighbours(self, persona: str, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Neighboured]:
        keys = [str(i) for i in ids]
        sql = (
            f"SELECT {_G_COLUMNS}, {neighbour_lookups('g')}, k.key FROM json_each(?) AS k"  # noqa: S608
            " CROSS JOIN persona_garden AS g ON g.id = k.value WHERE g.persona = ?"
        )
        rows = await self._db.read(lambda c: c.execute(sql, (json.dumps(keys), persona)).fetchall())
        known = dict(zip(keys, ids, strict=True))  # parsing an id costs a microsecond: the asked ones are known

        def near(value: str | None) -> uuid.UUID | None:
            return None if value is None else known.get(value) or uuid.UUID(value)

        return {ids[r[15]]: Neighboured((near(r[13]), near(r[14])), r, _entry, _glance) for r in rows}

    async def replace(self, entry: GardenEntry, expected_version: int) -> bool:
        row = _row(entry)
        params = (*row[2:5], row[5], row[7], *row[8:12], row[0], row[1], expected_version)

        def work() -> bool:
            with self._db.write() as conn:
                return bool(conn.execute(_REPLACE, params).rowcount == 1)

        return await self._db.run(work)

    async def delete(self, persona: str, entry_id: uuid.UUID) -> bool:
        def work() -> bool:
            with self._db.write() as conn:
                cursor = conn.execute(
                    "DELETE FROM persona_garden WHERE id = ? AND persona = ?", (str(entry_id), persona)
                )
                return bool(cursor.rowcount == 1)

        return await self._db.run(work)

    async def query(
        self, persona: str, flt: EntryFilter | None, page: GardenQuery | None = None, *, id_prefix: str | None = None
    ) -> list[GardenEntry]:
        sql, params = build_select(persona, flt, page or GardenQuery(), DIALECT, id_prefix)
        rows = await self._db.read(lambda c: c.execute(sql, params).fetchall())
        return [_entry(r) for r in rows]

    async def count(self, persona: str, flt: EntryFilter | None = None) -> int:
        where, params = build_where(persona, flt, DIALECT)
        sql = f"SELECT count(*) FROM persona_garden {where}"  # noqa: S608
        return int(await self._db.read(lambda c: c.execute(sql, params).fetchone()[0]))

    async def history(self, persona: str, entry_id: uuid.UUID) -> list[AuditRecord]:
        sql = (
            "SELECT seq, entry_id, operation, entry_version, changed_at, old_row, new_row FROM garden_audit"
            " WHERE persona = ? AND entry_id = ? ORDER BY seq"
        )
        rows = await self._db.read(lambda c: c.execute(sql, (persona, str(entry_id))).fetchall())
        return [
            AuditRecord(
                seq=r[0],
                entry_id=uuid.UUID(r[1]),
                operation=Operation(r[2]),
                version=r[3],
                changed_at=datetime.fromisoformat(r[4]),
                old=_json_or_none(r[5]),
                new=_json_or_none(r[6]),
            )
            for r in rows
        ]

    async def outbox_peek(self, persona: str, limit: int = 100) -> list[OutboxEvent]:
        persona = check_persona(persona)
        sql = (
            "SELECT seq, entry_id, persona, operation, entry_version, created_at, attempts"
            " FROM garden_outbox WHERE persona = ? ORDER BY seq LIMIT ?"
        )
        rows = await self._db.run(lambda: self._db.conn.execute(sql, (persona, limit)).fetchall())
        return [_event(r) for r in rows]

    async def outbox_depth(self) -> int:
        sql = "SELECT count(*) FROM garden_outbox"
        return int(await self._db.run(lambda: self._db.conn.execute(sql).fetchone()[0]))

    async def personas(self) -> dict[str, int]:
        sql = "SELECT persona, count(*) FROM persona_garden GROUP BY persona ORDER BY persona"
        rows = await self._db.read(lambda c: c.execute(sql).fetchall())
        return {r[0]: r[1] for r in rows}

    async def forget_persona(self, persona: str, *, purge_history: bool = False) -> int:
        persona = check_persona(persona)

        def work() -> int:
            with self._db.write() as conn:
                if not conn.execute(persona_known_sql("?1"), (persona,)).fetchone()[0]:
                    raise nothing_to_forget(persona)
                count = int(
                    conn.execute("SELECT count(*) FROM persona_garden WHERE persona = ?", (persona,)).fetchone()[0]
                )
                for statement in forget_statements("?", purge_history):
                    conn.execute(statement, (persona,))
                conn.execute(
                    "INSERT INTO persona_tombstone (persona, entries, purged_history) VALUES (?, ?, ?)",
                    (persona, count, int(purge_history)),
                )
                return count

        return await self._db.run(work)

    async def schema_version(self) -> int:
        return await self._db.schema_version()

    async def close(self) -> None:
        if self._owns_db:
            await self._db.close()


def _explain_integrity(exc: sqlite3.IntegrityError) -> str:
    text = str(exc)
    if "UNIQUE" in text and "persona_garden.id" in text:
        return "an entry with one of these ids already exists"
    return text

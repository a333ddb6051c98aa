"""Persona tokens of `kgents serve`, kept in the anchor (`persona_token`, migration 0015).

A persona token opens one persona's memory, read-write or read-only; the operator token (KGENTS_SERVER_TOKEN or
the home's `server.token`) opens everything. A token reads `kgt_<id>_<secret>`: the id (12 hex characters) names
its row and is what `kgents token list` shows and `kgents token revoke` takes; the secret (256 random bits) is
never stored: the row keeps the SHA-256 of the whole token, compared in constant time. A token is shown once, when
it is made; a revoked one keeps its row (`revoked_at`) and opens nothing.

`TokenStore` is the persistence (one adapter per anchor, the same suite over both); `Tokens` the rules above it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from kgents.anchor import postgres as pg
from kgents.anchor.handle import Anchor, PostgresAnchor
from kgents.clock import utcnow
from kgents.config import check_persona
from kgents.errors import NotFoundError, ValidationError
from kgents.home.discovery import PERSONA_TOKEN_PREFIX as PREFIX

ID_HEX = 12
_TOKEN_RE = re.compile(rf"^{PREFIX}([0-9a-f]{{{ID_HEX}}})_[A-Za-z0-9_-]{{43}}$")
_ID_PREFIX_RE = re.compile(r"^[0-9a-f]{4,12}$")
MAX_LABEL = 200


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """What is known of a persona token (never the token itself)."""

    id: str
    persona: str
    read_only: bool
    label: str | None
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "persona": self.persona,
            "read_only": self.read_only,
            "label": self.label,
            "created_at": self.created_at.isoformat(),
            "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat(),
        }


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii", "replace")).digest()


def token_id_of(token: str) -> str | None:
    """The id of a token shaped like a persona token, else None (it cannot be one)."""
    match = _TOKEN_RE.fullmatch(token)
    return match[1] if match else None


class TokenStore(Protocol):
    """The `persona_token` rows of one anchor."""

    async def insert(self, record: TokenRecord, token_hash: bytes) -> None: ...

    async def find(self, token_id: str) -> tuple[TokenRecord, bytes] | None:
        """The row of `token_id` (revoked or not) with its stored hash."""
        ...

    async def ids_with_prefix(self, prefix: str) -> list[str]: ...

    async def list(self, persona: str | None) -> list[TokenRecord]:
        """Every token (of `persona`, when given), oldest first, revoked ones too."""
        ...

    async def revoke(self, token_id: str, at: datetime) -> bool:
        """Mark the token revoked; False when it was already revoked (or is not there)."""
        ...


class Tokens:
    """Making, checking, listing and revoking persona tokens over a `TokenStore`."""

    def __init__(self, store: TokenStore) -> None:
        self.store = store

    async def create(
        self, persona: str, *, read_only: bool = False, label: str | None = None
    ) -> tuple[TokenRecord, str]:
        """A new token of `persona`: its record, and the token itself (shown once, stored only as a hash)."""
        persona = check_persona(persona)
        if label is not None and (len(label) > MAX_LABEL or not label.isprintable()):
            raise ValidationError(f"a token label must be at most {MAX_LABEL} printable characters")
        token_id = secrets.token_hex(ID_HEX // 2)
        token = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        record = TokenRecord(token_id, persona, read_only, label, utcnow())
        await self.store.insert(record, digest(token))
        return record, token

    async def verify(self, token: str) -> TokenRecord | None:
        """The active record the token opens, or None (not a persona token, unknown, revoked or wrong secret)."""
        token_id = token_id_of(token)
        if token_id is None:
            return None
        found = await self.store.find(token_id)
        if found is None:
            return None
        record, stored = found
        if not hmac.compare_digest(stored, digest(token)) or not record.active:
            return None
        return record

    async def list(self, persona: str | None = None) -> list[TokenRecord]:
        return await self.store.list(None if persona is None else check_persona(persona))

    async def revoke(self, ref: str) -> TokenRecord:
        """Revoke the token whose id is `ref` or starts with it (4+ hex characters); NotFoundError otherwise.
        Revoking a revoked token is not an error (it stays revoked)."""
        token_id = await self._resolve(ref.strip().lower())
        await self.store.revoke(token_id, utcnow())
        found = await self.store.find(token_id)
        assert found is not None
        return found[0]

    async def _resolve(self, ref: str) -> str:
        if not _ID_PREFIX_RE.fullmatch(ref):
            raise ValidationError(
                f"a token id is 4-{ID_HEX} hex characters, as `kgents token list` shows (got {ref!r:.40})"
            )
        ids = await self.store.ids_with_prefix(ref)
        if not ids:
            raise NotFoundError(f"no persona token {ref}")
        if len(ids) > 1:
            raise ValidationError(f"token id {ref} is ambiguous ({len(ids)} tokens start with it); give more of it")
        return ids[0]


# -- the two adapters --------------------------------------------------------------------------------------------
COLUMNS = "id, persona, read_only, label, created_at, revoked_at"


def _when(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _record(row: Any) -> TokenRecord:
    created = _when(row[4])
    assert created is not None
    return TokenRecord(str(row[0]), str(row[1]), bool(row[2]), row[3], created, _when(row[5]))


class SqliteTokenStore:
    def __init__(self, db: Any) -> None:
        self.db = db

    async def insert(self, record: TokenRecord, token_hash: bytes) -> None:
        values = (
            record.id,
            record.persona,
            int(record.read_only),
            token_hash,
            record.label,
            record.created_at.isoformat(),
        )

        def work() -> None:
            with self.db.write() as conn:
                conn.execute(
                    "INSERT INTO persona_token (id, persona, read_only, token_hash, label, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    values,
                )

        await self.db.run(work)

    async def find(self, token_id: str) -> tuple[TokenRecord, bytes] | None:
        sql = f"SELECT {COLUMNS}, token_hash FROM persona_token WHERE id = ?"  # noqa: S608
        row = await self.db.read(lambda c: c.execute(sql, (token_id,)).fetchone())
        return None if row is None else (_record(row), bytes(row[6]))

    async def ids_with_prefix(self, prefix: str) -> list[str]:
        sql = "SELECT id FROM persona_token WHERE substr(id, 1, ?) = ? ORDER BY id LIMIT 2"
        rows = await self.db.run(lambda: self.db.conn.execute(sql, (len(prefix), prefix)).fetchall())
        return [str(r[0]) for r in rows]

    async def list(self, persona: str | None) -> list[TokenRecord]:
        where, params = ("WHERE persona = ?", (persona,)) if persona is not None else ("", ())
        sql = f"SELECT {COLUMNS} FROM persona_token {where} ORDER BY created_at, id"  # noqa: S608
        rows = await self.db.run(lambda: self.db.conn.execute(sql, params).fetchall())
        return [_record(r) for r in rows]

    async def revoke(self, token_id: str, at: datetime) -> bool:
        def work() -> bool:
            with self.db.write() as conn:
                done = conn.execute(
                    "UPDATE persona_token SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                    (at.isoformat(), token_id),
                )
                return bool(done.rowcount)

        return bool(await self.db.run(work))


class PostgresTokenStore:
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    @pg.translate_errors
    async def insert(self, record: TokenRecord, token_hash: bytes) -> None:
        await self.pool.execute(
            "INSERT INTO persona_token (id, persona, read_only, token_hash, label, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            record.id,
            record.persona,
            record.read_only,
            token_hash,
            record.label,
            record.created_at,
        )

    @pg.translate_errors
    async def find(self, token_id: str) -> tuple[TokenRecord, bytes] | None:
        row = await self.pool.fetchrow(f"SELECT {COLUMNS}, token_hash FROM persona_token WHERE id = $1", token_id)  # noqa: S608
        return None if row is None else (_record(tuple(row)), bytes(row[6]))

    @pg.translate_errors
    async def ids_with_prefix(self, prefix: str) -> list[str]:
        rows = await self.pool.fetch(
            "SELECT id FROM persona_token WHERE left(id, $1) = $2 ORDER BY id LIMIT 2", len(prefix), prefix
        )
        return [str(r[0]) for r in rows]

    @pg.translate_errors
    async def list(self, persona: str | None) -> list[TokenRecord]:
        where = "WHERE persona = $1" if persona is not None else ""
        args = (persona,) if persona is not None else ()
        rows = await self.pool.fetch(f"SELECT {COLUMNS} FROM persona_token {where} ORDER BY created_at, id", *args)  # noqa: S608
        return [_record(tuple(r)) for r in rows]

    @pg.translate_errors
    async def revoke(self, token_id: str, at: datetime) -> bool:
        done = await self.pool.execute(
            "UPDATE persona_token SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL", at, token_id
        )
        return str(done).endswith(" 1")


def tokens_on(anchor: Anchor) -> TokenStore:
    """The persona token rows on an opened anchor (either backend), sharing its connection or pool."""
    if isinstance(anchor, PostgresAnchor):
        return PostgresTokenStore(anchor.pool)
    return SqliteTokenStore(anchor)

"""The server anchor: a PostgreSQL schema reached through an asyncpg pool.

Every connection pins `search_path` to the kgents schema and the time zone to UTC. Connecting and migrating turn
driver failures into one-line errors that name `KGENTS_POSTGRES_URL` and never show its password.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import asyncpg

from kgents.anchor.lost import backend_error, first_line
from kgents.anchor.migrations import check_schema_name, load_migrations, pending_migrations
from kgents.config import redact_url
from kgents.errors import BackendUnavailableError, SchemaError

CONNECT_TIMEOUT_S = 5.0
MIGRATION_LOCK_KEY = 0x6B67656E7473  # "kgents": one migrator at a time per database


async def _init_connection(conn: Any) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


def describe_failure(url: str, exc: BaseException) -> str:
    """One line for a failed connection, with the URL redacted and the password never echoed."""
    shown = redact_url(url)
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        reason = "the database does not exist"
    elif isinstance(exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError):
        reason = "authentication failed"
    elif isinstance(exc, TimeoutError | asyncio.TimeoutError):
        reason = f"no answer within {CONNECT_TIMEOUT_S:g} s"
    elif isinstance(exc, ConnectionRefusedError):
        reason = "connection refused (is PostgreSQL running?)"
    elif isinstance(exc, OSError):
        reason = exc.strerror or type(exc).__name__
    else:
        reason = first_line(exc)
    return f"KGENTS_POSTGRES_URL: cannot connect to {shown}: {reason}"


P = ParamSpec("P")
T = TypeVar("T")


def translate_errors(method: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Turn a lost or refused connection in the middle of a read into one BackendUnavailableError line."""
    return _translated(method, writing=False)


def translate_write_errors(method: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """The same for a write: a refused connection wrote nothing (`unavailable`); a connection lost while the write
    was under way may have committed it (`OutcomeUnknownError`)."""
    return _translated(method, writing=True)


def _translated(method: Callable[P, Coroutine[Any, Any, T]], *, writing: bool) -> Callable[P, Coroutine[Any, Any, T]]:
    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except asyncpg.CannotConnectNowError:
            done = "; nothing was written" if writing else ""
            raise BackendUnavailableError(
                f"KGENTS_POSTGRES_URL: PostgreSQL is starting up or shutting down{done}"
            ) from None
        except Exception as exc:
            error = backend_error(exc, writing=writing)
            if error is None:
                raise
            raise error from None

    return wrapper


_CONNECT_FAILURES = (
    OSError,
    TimeoutError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidPasswordError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)
"""What connecting can fail with; any other server error is about the SQL we sent and says so."""


async def _connect(url: str) -> Any:
    try:
        return await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_S)
    except _CONNECT_FAILURES as exc:
        raise BackendUnavailableError(describe_failure(url, exc)) from None
    except ValueError as exc:  # asyncpg's DSN parser
        raise BackendUnavailableError(f"KGENTS_POSTGRES_URL is not usable ({redact_url(url)}): {exc}") from None


async def ensure_schema(url: str, schema: str) -> None:
    """Create `schema` if missing, under the migration lock so processes starting together never collide."""
    conn = await _connect(url)
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    except _CONNECT_FAILURES as exc:
        raise BackendUnavailableError(describe_failure(url, exc)) from None
    except asyncpg.PostgresError as exc:
        raise SchemaError(f"KGENTS_POSTGRES_SCHEMA: cannot create schema {schema!r}: {first_line(exc)}") from None
    finally:
        await conn.close()


async def create_pool(url: str, schema: str, *, min_size: int = 1, max_size: int = 10) -> Any:
    """An asyncpg pool on `schema` (created if missing); BackendUnavailableError only if PostgreSQL cannot be
    reached, SchemaError if the schema cannot be made, ValidationError for a name kgents refuses."""
    check_schema_name(schema)
    await ensure_schema(url, schema)
    try:
        return await asyncpg.create_pool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=CONNECT_TIMEOUT_S,
            init=_init_connection,
            server_settings={"search_path": f'"{schema}"', "TimeZone": "UTC", "application_name": "kgents"},
        )
    except _CONNECT_FAILURES as exc:
        raise BackendUnavailableError(describe_failure(url, exc)) from None


async def applied_versions(conn: Any) -> set[int]:
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version"
        " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    return {int(r[0]) for r in await conn.fetch("SELECT version FROM schema_version")}


@translate_errors
async def migrate(pool: Any, schema: str) -> list[str]:
    """Apply the missing migrations in one transaction, serialised by an advisory lock; return what ran."""
    migrations = load_migrations("postgres", schema)
    applied: list[str] = []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
        for migration in pending_migrations(migrations, await applied_versions(conn), f"schema {schema}"):
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_version (version, name) VALUES ($1, $2)", migration.version, migration.name
            )
            applied.append(f"{migration.version:04d}_{migration.name}")
    return applied


async def schema_version(pool: Any) -> int:
    async with pool.acquire() as conn:
        return max(await applied_versions(conn), default=0)


async def drop_schema(url: str, schema: str) -> None:
    """Remove a schema and everything in it (tests and `kgents db reset`)."""
    check_schema_name(schema)
    conn = await _connect(url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()

"""The ordered schema history of the anchor database, shared by every capability.

Migrations are SQL files named `NNNN_name.sql` under `sql/<backend>/`; each applies once, in a transaction,
and is recorded in `schema_version`. Two placeholders keep the files free of repetition:

- `{{schema}}` (PostgreSQL): the quoted schema name, for functions that pin their `search_path`;
- `{{row:NEW}}` / `{{row:OLD}}` (SQLite): the garden row as a JSON object, in the same shape PostgreSQL's
  `to_jsonb(row)` gives, so audit and outbox payloads read the same on both backends; `{{row_observed:NEW}}`
  (from migration 0008 on, once the row has `observed_at`) the same with that column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Literal

from kgents.config import SCHEMA_RE
from kgents.errors import SchemaError, ValidationError

Backend = Literal["sqlite", "postgres"]

_NAME_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

SQLITE_ROW_FIELDS = (
    ("id", "{r}.id"),
    ("persona", "{r}.persona"),
    ("content", "{r}.content"),
    ("entry_type", "{r}.entry_type"),
    ("lifecycle", "{r}.lifecycle"),
    ("confidence", "{r}.confidence"),
    ("planted_at", "{r}.planted_at"),
    ("last_nurtured", "{r}.last_nurtured"),
    ("eigenvector_affinities", "json({r}.eigenvector_affinities)"),
    ("evidence", "json({r}.evidence)"),
    ("tags", "json({r}.tags)"),
    ("version", "{r}.version"),
)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def _sqlite_row_json(alias: str, fields: tuple[tuple[str, str], ...] = SQLITE_ROW_FIELDS) -> str:
    pairs = ", ".join(f"'{key}', {expr.format(r=alias)}" for key, expr in fields)
    return f"json_object({pairs})"


def check_schema_name(schema: object) -> str:
    """`schema` if it is a name kgents may quote into SQL, else ValidationError (checked where a name enters)."""
    if not isinstance(schema, str) or not SCHEMA_RE.fullmatch(schema):
        raise ValidationError(
            "a PostgreSQL schema name must be 1-63 lower-case letters, digits or '_', not starting with a digit"
            f" (got {schema!r:.80})"
        )
    return schema


def render(sql: str, backend: Backend, schema: str | None = None) -> str:
    if backend == "postgres":
        if schema is None:
            raise ValueError("the PostgreSQL migrations need a schema name")
        return sql.replace("{{schema}}", f'"{check_schema_name(schema)}"')
    observed = (*SQLITE_ROW_FIELDS, ("observed_at", "{r}.observed_at"))
    for alias in ("NEW", "OLD"):
        sql = sql.replace(f"{{{{row_observed:{alias}}}}}", _sqlite_row_json(alias, observed))
        sql = sql.replace(f"{{{{row:{alias}}}}}", _sqlite_row_json(alias))
    return sql


def load_migrations(backend: Backend, schema: str | None = None) -> list[Migration]:
    """Every migration of `backend`, in order, rendered and ready to run."""
    folder = resources.files("kgents.anchor").joinpath("sql", backend)
    found: list[Migration] = []
    for item in folder.iterdir():
        match = _NAME_RE.match(item.name)
        if match:
            found.append(Migration(int(match[1]), match[2], render(item.read_text("utf-8"), backend, schema)))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two {backend} migrations share a version number: {versions}")
    return found


def pending_migrations(migrations: list[Migration], applied: set[int], where: str) -> list[Migration]:
    """The migrations not yet applied, in order; SchemaError if the database knows versions this code does not."""
    unknown = applied - {m.version for m in migrations}
    if unknown:
        raise SchemaError(
            f"{where} has schema version(s) {sorted(unknown)} that this kgents does not know; upgrade kgents"
        )
    return [m for m in migrations if m.version not in applied]

"""The SQL both garden stores share: the column list and the query builder, written once for two dialects.

Only the placeholder style and two predicates (tag containment, id prefix) differ between SQLite and PostgreSQL;
everything else, including the order of results, is identical so both backends answer a query the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from kgents.errors import NotFoundError
from kgents.garden.filters import EntryFilter
from kgents.garden.model import GardenEntry, Lifecycle
from kgents.garden.records import GardenQuery, OrderBy

INSERT_COLUMNS = (
    "id, persona, content, entry_type, lifecycle, confidence, planted_at, last_nurtured,"
    " eigenvector_affinities, evidence, tags, version, observed_at"
)
OBSERVED = "coalesce(observed_at, planted_at)"
"""When an entry was observed (rows from before migration 0008 hold NULL: their planting)."""
NEIGHBOUR_SIDES = (("<", "DESC", "before_id"), (">", "ASC", "after_id"))
"""Before, then after: the comparison and the order of the one-row lookup on (persona, observed) each side, and
the name of its column (the lookups' own `id` would shadow the row's in a record read by name)."""


def neighbour_lookups(alias: str) -> str:
    """The ids observed just before and just after row `alias` among its persona's (idx_garden_persona_observed)."""
    mine = f"coalesce({alias}.observed_at, {alias}.planted_at)"
    near = "(SELECT n.id FROM persona_garden AS n WHERE n.persona = {a}.persona AND {o} {op} {m}"
    near += " ORDER BY {o} {by} LIMIT 1) AS {name}"
    sides = (near.format(a=alias, o=OBSERVED, op=op, m=mine, by=by, name=name) for op, by, name in NEIGHBOUR_SIDES)
    return ", ".join(sides)


COLUMNS = INSERT_COLUMNS.replace("observed_at", f"{OBSERVED} AS observed_at")
"""What every read selects, in the order `_entry` of each store expects."""

ALL_STAGES = frozenset(Lifecycle)

_ORDER_COLUMNS = {
    OrderBy.CONFIDENCE: "confidence",
    OrderBy.PLANTED: "planted_at",
    OrderBy.NURTURED: "last_nurtured",
    OrderBy.CONTENT: "content",
    OrderBy.OBSERVED: OBSERVED,
}


@dataclass(frozen=True, slots=True)
class Dialect:
    placeholder: Callable[[int], str]
    """The n-th (1-based) bind parameter."""
    tags_contain: str
    """Predicate with `{p}` for a parameter holding the tags every row must carry."""
    id_prefix: str
    """Predicate with `{p}` for a parameter holding a lower-case id prefix followed by `%`."""
    text_contains: str
    """Case-insensitive substring predicate with `{p}` for the text parameter."""
    encode_tags: Callable[[tuple[str, ...]], Any]
    encode_time: Callable[[datetime], Any]


def build_where(
    persona: str, flt: EntryFilter | None, dialect: Dialect, id_prefix: str | None = None
) -> tuple[str, list[Any]]:
    """`WHERE …` for one persona and a filter (None: every entry, COMPOST too), with its parameters in order."""
    params: list[Any] = [persona]
    clauses = [f"persona = {dialect.placeholder(1)}"]

    def bind(value: Any) -> str:
        params.append(value)
        return dialect.placeholder(len(params))

    if flt is not None:
        if set(flt.stages) != ALL_STAGES:
            clauses.append(f"lifecycle IN ({', '.join(bind(v.value) for v in flt.stages)})")
        if flt.entry_types:
            clauses.append(f"entry_type IN ({', '.join(bind(v.value) for v in flt.entry_types)})")
        if flt.min_confidence is not None:
            clauses.append(f"confidence >= {bind(flt.min_confidence)}")
        if flt.tags:
            clauses.append(dialect.tags_contain.format(p=bind(dialect.encode_tags(flt.tags))))
        if flt.text:
            clauses.append(dialect.text_contains.format(p=bind(flt.text)))
        if flt.observed_after is not None:
            clauses.append(f"{OBSERVED} >= {bind(dialect.encode_time(flt.observed_after))}")
        if flt.observed_before is not None:
            clauses.append(f"{OBSERVED} < {bind(dialect.encode_time(flt.observed_before))}")
    if id_prefix:
        clauses.append(dialect.id_prefix.format(p=bind(id_prefix.lower() + "%")))
    return "WHERE " + " AND ".join(clauses), params


def build_select(
    persona: str, flt: EntryFilter | None, page: GardenQuery, dialect: Dialect, id_prefix: str | None = None
) -> tuple[str, list[Any]]:
    where, params = build_where(persona, flt, dialect, id_prefix)
    direction = "DESC" if page.descending else "ASC"
    column = _ORDER_COLUMNS[page.order_by]
    order = f"{column} {direction}, id {direction}"
    if page.after is not None:
        where += " AND " + _after(column, "<" if page.descending else ">", page.after, dialect, params)
    params += [page.limit, page.offset]
    limit, offset = dialect.placeholder(len(params) - 1), dialect.placeholder(len(params))
    return f"SELECT {COLUMNS} FROM persona_garden {where} ORDER BY {order} LIMIT {limit} OFFSET {offset}", params  # noqa: S608


def _after(column: str, op: str, key: tuple[Any, uuid.UUID], dialect: Dialect, params: list[Any]) -> str:
    """The keyset predicate: rows past (value, id) in the order. Its first half (`column >= value`) is a range
    the order's index answers; the second breaks ties by id."""
    value, last_id = key
    params += [dialect.encode_time(value) if isinstance(value, datetime) else value, str(last_id)]
    at, after_id = dialect.placeholder(len(params) - 1), dialect.placeholder(len(params))
    return f"{column} {op}= {at} AND ({column} {op} {at} OR id {op} {after_id})"


def continue_versions(entries: Sequence[GardenEntry], floors: Mapping[uuid.UUID, int]) -> list[GardenEntry]:
    """The entries as they will be stored: one planted under the id of a deleted entry continues that entry's
    version (`floors`: the tombstones' last versions), so a version never goes backwards for an id and the
    index's version guard lets the new row replace whatever was indexed for the old one."""
    return [
        replace(e, version=floors[e.id] + 1) if e.id in floors and e.version <= floors[e.id] else e for e in entries
    ]


PERSONA_TABLES = (
    "persona_garden",
    "garden_audit",
    "garden_outbox",
    "synapse_dead_letter",
    "soul_snapshot",
    "persona_token",
)
"""Where a persona leaves rows in the anchor (besides its `persona_tombstone` rows)."""


def persona_known_sql(placeholder: str) -> str:
    """One query, one parameter (the persona: `?1` on SQLite, `$1` on PostgreSQL): whether the anchor holds any row
    of it, so forgetting a persona that never existed (or went with its history) is NotFound, not a new tombstone."""
    if placeholder not in ("?1", "$1"):
        raise ValueError(f"not a numbered bind parameter: {placeholder!r}")
    checks = [f"EXISTS (SELECT 1 FROM {table} WHERE persona = {placeholder})" for table in PERSONA_TABLES]  # noqa: S608
    return "SELECT " + " OR ".join(checks)


def nothing_to_forget(persona: str) -> NotFoundError:
    return NotFoundError(
        f"persona {persona!r} has nothing to forget here: no entries, history, soul or tokens"
        " (it never existed, or it was forgotten with its history)"
    )


def forget_statements(placeholder: str, purge_history: bool) -> list[str]:
    """The statements that remove one persona from the anchor, in order, each with one parameter (the persona).

    Deleting the rows fires the usual triggers (outbox, audit, id tombstones); the outbox rows and the id
    tombstones they leave are removed right after, in the same transaction, so nothing of the persona is left
    to relay and an import can restore its entries at their own versions. The audit rows go only when asked.
    """
    if placeholder not in ("?", "$1"):
        raise ValueError(f"not a bind parameter: {placeholder!r}")
    statements = [
        "DELETE FROM persona_garden WHERE persona = {p}",
        "DELETE FROM garden_tombstone WHERE id IN (SELECT entry_id FROM garden_audit WHERE persona = {p})",
        "DELETE FROM garden_outbox WHERE persona = {p}",
        "DELETE FROM synapse_dead_letter WHERE persona = {p}",
        "DELETE FROM soul_snapshot WHERE persona = {p}",
        "DELETE FROM dream_pending WHERE persona = {p}",
        "DELETE FROM dream_state WHERE persona = {p}",
        "DELETE FROM persona_token WHERE persona = {p}",
    ]
    if purge_history:
        statements.append("DELETE FROM garden_audit WHERE persona = {p}")
    return [s.format(p=placeholder) for s in statements]

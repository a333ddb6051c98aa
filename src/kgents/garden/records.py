"""Values the stores return besides entries: queries, neighbours, audit history and outbox events."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from kgents.errors import ValidationError
from kgents.garden.model import GardenEntry, parse_enum

MAX_QUERY_LIMIT = 10_000


class Operation(StrEnum):
    INSERT = "INSERT"
    UPDATE = "UPDATE"
    DELETE = "DELETE"


class OrderBy(StrEnum):
    """How query results are sorted; every order ends with the id so pages are stable."""

    CONFIDENCE = "confidence"
    PLANTED = "planted"
    NURTURED = "nurtured"
    CONTENT = "content"
    OBSERVED = "observed"


@dataclass(frozen=True, slots=True)
class GardenQuery:
    """How a listing is ordered and paged (which entries: `EntryFilter`)."""

    order_by: OrderBy = OrderBy.CONFIDENCE
    descending: bool = True
    limit: int = 100
    offset: int = 0
    after: tuple[Any, uuid.UUID] | None = None
    """Keyset paging: only the rows after this (order value, id) in this order (`page_key` of the last row of the
    page before). Each page then costs what it returns, not what it skips, and a row that stays is never skipped
    when rows before it come or go (on an order whose value never changes: planted, observed)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "order_by", parse_enum(OrderBy, self.order_by, "order_by"))
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or not 1 <= self.limit <= MAX_QUERY_LIMIT:
            raise ValidationError(f"limit must be between 1 and {MAX_QUERY_LIMIT:,} (got {self.limit})")
        if isinstance(self.offset, bool) or not isinstance(self.offset, int) or self.offset < 0:
            raise ValidationError(f"offset must not be negative (got {self.offset})")
        if self.after is not None and self.offset:
            raise ValidationError("page by offset or by key (after), not both")


def page_key(entry: GardenEntry, order_by: OrderBy) -> tuple[Any, uuid.UUID]:
    """Where `entry` stands in `order_by`: the `GardenQuery.after` of the page that follows it."""
    values = {
        OrderBy.CONFIDENCE: entry.confidence,
        OrderBy.PLANTED: entry.planted_at,
        OrderBy.NURTURED: entry.last_nurtured,
        OrderBy.CONTENT: entry.content,
        OrderBy.OBSERVED: entry.observed_at or entry.planted_at,
    }
    return values[order_by], entry.id


def check_id_prefix(prefix: str) -> str:
    """A lower-case id prefix of hex digits and '-', else ValidationError."""
    if not isinstance(prefix, str) or not all(c in "0123456789abcdef-" for c in prefix.lower()):
        raise ValidationError(f"an id prefix holds only hex digits and '-' (got {prefix!r:.40})")
    return prefix.lower()


@dataclass(frozen=True, slots=True)
class Lease:
    """Outbox rows leased to `holder` (a relay id) for `seconds` as they are written (see `GardenStore.insert`)."""

    holder: str
    seconds: float
    leased: list[OutboxEvent] = field(default_factory=list, compare=False)
    """Filled by the store: the rows it leased (empty where the store leases nothing, e.g. PostgreSQL)."""


class Neighboured:
    """One entry of `GardenStore.get_with_neighbours`: the ids of its persona's entries observed just before and
    after it (`near`), and the entry itself, read from its row only when asked for (a recall looks at the
    neighbours of a hundred candidates and shows ten of them); `glance` reads only the content, observed_at and
    tags (what a recall weighs a candidate by) at a fraction of that cost."""

    __slots__ = ("_entry", "_glance", "_parse", "_row", "near")

    def __init__(
        self,
        near: tuple[uuid.UUID | None, uuid.UUID | None],
        row: Any,
        parse: Callable[[Any], GardenEntry],
        glance: Callable[[Any], Glance],
    ) -> None:
        self.near = near
        self._row = row
        self._parse = parse
        self._glance = glance
        self._entry: GardenEntry | None = None

    @property
    def entry(self) -> GardenEntry:
        if self._entry is None:
            self._entry = self._parse(self._row)
        return self._entry

    def glance(self) -> Glance:
        return self._glance(self._row) if self._entry is None else Glance.of(self._entry)


@dataclass(frozen=True, slots=True)
class Glance:
    """What a recall weighs a candidate by, read from its row without building the entry."""

    content: str
    observed: datetime
    tags: tuple[str, ...]

    @staticmethod
    def of(entry: GardenEntry) -> Glance:
        return Glance(entry.content, entry.observed, entry.tags)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One change of one entry, as the database's trigger recorded it."""

    seq: int
    entry_id: uuid.UUID
    operation: Operation
    version: int
    changed_at: datetime
    old: Mapping[str, Any] | None
    new: Mapping[str, Any] | None

    def changed_fields(self) -> list[str]:
        """Names of the fields whose value differs between old and new (all of them for insert / delete)."""
        old, new = self.old or {}, self.new or {}
        return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "entry_id": str(self.entry_id),
            "operation": self.operation.value,
            "version": self.version,
            "changed_at": self.changed_at.isoformat(),
            "changed_fields": self.changed_fields(),
            "old": dict(self.old) if self.old is not None else None,
            "new": dict(self.new) if self.new is not None else None,
        }


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """A change waiting for the relay: the key, the operation and the source version (state is re-read)."""

    seq: int
    entry_id: uuid.UUID
    persona: str
    operation: Operation
    entry_version: int
    created_at: datetime
    attempts: int = 0

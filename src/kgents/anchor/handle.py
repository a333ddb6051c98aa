"""The opened anchor: the connections (SQLite: a write one and a read-only one) or the pool (PostgreSQL) to the
database of truth that every part shares. Each part builds the access to its own tables on it: the garden its
store, the relay its queue (`synapse.queue.queue_on`), the soul its snapshots (`soul.snapshot.snapshots_on`), the
server its tokens (`server.tokens.tokens_on`); none builds another part's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kgents.anchor.sqlite import SqliteAnchor


@dataclass(frozen=True, slots=True)
class PostgresAnchor:
    """A PostgreSQL anchor: a pool pinned to one schema."""

    pool: Any
    schema: str


Anchor = SqliteAnchor | PostgresAnchor
"""An opened anchor: the embedded SQLite `SqliteAnchor`, or a `PostgresAnchor`."""

"""The opened anchor: the one connection (SQLite) or pool (PostgreSQL) to the database of truth that every part
shares. Each part builds its own side on it: the garden its store, the relay its queue
(`synapse.queue.queue_on`), the soul its snapshots (`soul.snapshot.snapshots_on`); none builds another's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kgents.anchor.sqlite import Database


@dataclass(frozen=True, slots=True)
class PostgresAnchor:
    """A PostgreSQL anchor: a pool pinned to one schema."""

    pool: Any
    schema: str


Anchor = Database | PostgresAnchor
"""An opened anchor: the embedded SQLite `Database`, or a `PostgresAnchor`."""

"""The contract every garden backend keeps (in the manner of psycopg's `abc.py`).

A store is thin: it persists and finds entries, always within one persona, and leaves every rule (validation,
lifecycle, nurture arithmetic) to `PersonaGarden`, so the rules exist once for all backends. Writes of changed
entries are compare-and-set on the version: a concurrent writer makes `replace` return False, never lose an update.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from kgents.config import Settings
from kgents.garden.filters import EntryFilter

if TYPE_CHECKING:
    from kgents.anchor.handle import Anchor
    from kgents.garden.dream_ledger import DreamLedger
from kgents.garden.model import GardenEntry
from kgents.garden.records import AuditRecord, GardenQuery, Lease, Neighboured, OutboxEvent


@runtime_checkable
class GardenStore(Protocol):
    """Persistence of garden entries, their audit trail and their outbox."""

    @property
    def backend(self) -> str:
        """`sqlite` or `postgres`."""
        ...

    async def insert(self, entries: Sequence[GardenEntry], lease: Lease | None = None) -> list[GardenEntry]:
        """Insert all entries in one transaction; ConflictError (and nothing written) if any id exists. Returns the
        entries as stored: one planted under the id of a deleted entry continues that entry's version (versions
        never go backwards for an id, so the index can tell the new row from the old one). `lease`: SQLite also
        leases the new outbox rows to that relay in the same transaction (a writer that applies them inline);
        PostgreSQL, whose claims are row locks, ignores it."""
        ...

    async def get(self, persona: str, entry_id: uuid.UUID) -> GardenEntry | None: ...

    async def get_many(self, persona: str, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, GardenEntry]:
        """The entries of `persona` among `ids`, in one round trip (absent ids are simply missing)."""
        ...

    async def get_with_neighbours(self, persona: str, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Neighboured]:
        """The entries of `persona` among `ids` (absent ids are simply missing), each with the ids of the persona's
        entries observed immediately before and after it (None at either end; entries observed at the very same
        instant are not neighbours), in one round trip."""
        ...

    async def replace(self, entry: GardenEntry, expected_version: int) -> bool:
        """Write `entry` over the stored one if that is still at `expected_version`; False otherwise."""
        ...

    async def delete(self, persona: str, entry_id: uuid.UUID) -> bool: ...

    async def query(
        self, persona: str, flt: EntryFilter | None, page: GardenQuery | None = None, *, id_prefix: str | None = None
    ) -> list[GardenEntry]:
        """Entries of `persona` passing `flt` (None: every entry, COMPOST too), ordered and paged by `page`."""
        ...

    async def count(self, persona: str, flt: EntryFilter | None = None) -> int: ...

    async def history(self, persona: str, entry_id: uuid.UUID) -> list[AuditRecord]:
        """Every recorded change of the entry, oldest first (also after it was deleted)."""
        ...

    async def outbox_peek(self, persona: str, limit: int = 100) -> list[OutboxEvent]:
        """This persona's pending outbox events, oldest first, without claiming them."""
        ...

    async def outbox_depth(self) -> int: ...

    async def personas(self) -> dict[str, int]:
        """Every persona with entries and how many it has (operator-wide: `kgents db info --all-personas`)."""
        ...

    async def forget_persona(self, persona: str, *, purge_history: bool = False) -> int:
        """Remove every row of `persona` from the anchor in one transaction (entries, their outbox events, id
        tombstones and dead letters, soul snapshots; audit rows with `purge_history`) and record one
        `persona_tombstone` row; returns how many entries went."""
        ...

    async def schema_version(self) -> int: ...

    @property
    def anchor(self) -> Anchor:
        """The opened anchor this store is built on: the part every other side (the relay's queue, the soul's
        snapshots) builds on too, sharing the connection or pool."""
        ...

    def dream_ledger(self) -> DreamLedger:
        """The dream's ledger in this anchor (what changed since the last dream, the bulk decay, its bookkeeping),
        sharing the connection or pool."""
        ...

    async def close(self) -> None: ...


async def open_store(settings: Settings) -> GardenStore:
    """The garden store the settings point at: PostgreSQL when a URL is set, else SQLite under KGENTS_HOME."""
    if settings.postgres_url:
        from kgents.garden.postgres_store import PostgresGardenStore

        return await PostgresGardenStore.open(settings.postgres_url, settings.postgres_schema)
    from kgents.garden.sqlite_store import SqliteGardenStore

    return await SqliteGardenStore.open(settings.sqlite_path)

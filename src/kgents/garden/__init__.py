"""The PersonaGarden: what a K-gent remembers about its persona, on the anchor (SQLite or PostgreSQL)."""

from __future__ import annotations

from kgents.config import Settings
from kgents.garden.lifecycle import check_transition, next_stage, promoted, stage_for_confidence
from kgents.garden.model import EntryType, GardenEntry, Lifecycle
from kgents.garden.records import AuditRecord, GardenQuery, Operation, OrderBy, OutboxEvent
from kgents.garden.service import UPDATABLE, PersonaGarden
from kgents.garden.store import GardenStore

__all__ = [
    "UPDATABLE",
    "AuditRecord",
    "EntryType",
    "GardenEntry",
    "GardenQuery",
    "GardenStore",
    "Lifecycle",
    "Operation",
    "OrderBy",
    "OutboxEvent",
    "PersonaGarden",
    "Settings",
    "check_transition",
    "next_stage",
    "open_store",
    "promoted",
    "stage_for_confidence",
]


async def open_store(settings: Settings) -> GardenStore:
    """The garden store the settings point at: PostgreSQL when a URL is set, else SQLite under KGENTS_HOME."""
    if settings.postgres_url:
        from kgents.garden.postgres_store import PostgresGardenStore

        return await PostgresGardenStore.open(settings.postgres_url, settings.postgres_schema)
    from kgents.garden.sqlite_store import SqliteGardenStore

    return await SqliteGardenStore.open(settings.sqlite_path)

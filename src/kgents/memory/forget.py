"""Forgetting a whole persona: `kgents forget --persona P` removes it everywhere it lives.

The anchor goes first, in one transaction (entries, their outbox events and id tombstones, dead letters, soul
snapshots, with `purge_history` the audit rows too; one `persona_tombstone` row records when and how many), then
the persona's points in every collection the relay writes (by a persona filter: the cost follows its points,
never a scan of every persona's), then its soul keys in the Spark. Afterwards a search,
a cache read and a coherency check find nothing of it. Everything is opened before anything is removed, so an
unreachable store stops the command with nothing forgotten.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kgents.garden.model import check_persona
from kgents.garden.store import GardenStore
from kgents.resonance.protocols import VectorIndex
from kgents.soul.session import open_spark
from kgents.soul.spark import SparkStore
from kgents.synapse.runtime import Synapse


@dataclass(frozen=True, slots=True)
class ForgetReport:
    persona: str
    entries: int
    points: int
    cache_keys: int
    purged_history: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "persona": self.persona,
            "entries": self.entries,
            "points": self.points,
            "cache_keys": self.cache_keys,
            "purged_history": self.purged_history,
        }


async def forget_points(index: VectorIndex, collections: Sequence[str], persona: str) -> int:
    """Delete every point of `persona` from `collections` by a persona filter (the cost follows this persona's
    points, not the collection's); returns how many."""
    removed = 0
    for collection in collections:
        removed += await index.delete_persona(collection, persona)
    return removed


async def forget_persona(
    store: GardenStore,
    index: VectorIndex,
    collections: Sequence[str],
    spark: SparkStore,
    persona: str,
    *,
    purge_history: bool = False,
) -> ForgetReport:
    """Remove `persona` from the anchor, the index and the Spark (in that order)."""
    persona = check_persona(persona)
    entries = await store.forget_persona(persona, purge_history=purge_history)
    points = await forget_points(index, collections, persona)
    keys = await spark.forget_persona(persona)
    return ForgetReport(persona, entries, points, keys, purge_history)


async def forget_on(synapse: Synapse, spark: SparkStore, persona: str, *, purge_history: bool) -> ForgetReport:
    """`forget_persona` over an opened stack and Spark, in every collection the relay writes."""
    collections = [target.collection for target in (await synapse.refresh_state()).targets()]
    return await forget_persona(synapse.store, synapse.index, collections, spark, persona, purge_history=purge_history)


async def forget_everywhere(synapse: Synapse, persona: str, *, purge_history: bool = False) -> ForgetReport:
    """`forget_on` with the Spark the settings name, opened strictly (Redis must answer)."""
    spark = await open_spark(synapse.settings, strict=True)
    try:
        return await forget_on(synapse, spark, persona, purge_history=purge_history)
    finally:
        await spark.close()

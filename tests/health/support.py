"""Shared setup for the health tests: a garden with entries, drained into the index, and generous thresholds
(the boundary tests pin the defaults; these keep a busy 2-core CI machine from flapping)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from kgents.config import Settings
from kgents.garden.service import PersonaGarden
from kgents.garden.store import open_store
from kgents.health.levels import Thresholds

RELAXED = Thresholds(commit_ms_below=(2_000.0, 4_000.0, 8_000.0), search_ms_below=(2_000.0, 4_000.0, 8_000.0))
CONTENTS = ("I prefer minimal code", "tests wait on conditions", "small modules with one job")


def relaxed(**changes: Any) -> Thresholds:
    return replace(RELAXED, **changes)


async def plant(settings: Settings, contents: tuple[str, ...] = CONTENTS, persona: str = "kent") -> list[uuid.UUID]:
    store = await open_store(settings)
    try:
        garden = PersonaGarden(store, persona)
        return [(await garden.plant(text, "PREFERENCE")).id for text in contents]
    finally:
        await store.close()


async def drain(settings: Settings) -> None:
    """What a relay would do: apply every pending event to the index."""
    from kgents.synapse.runtime import open_synapse

    synapse = await open_synapse(settings)
    try:
        result = await synapse.catch_up(30.0)
        assert result.caught_up, result
    finally:
        await synapse.close()

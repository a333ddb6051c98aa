"""Texts the embedder knows no word of (emoji only) get the zero vector: stored and searched without NaN or a crash,
and a search for one finds nothing instead of every other such text."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest

from kgents.config import Settings
from kgents.garden.filters import EntryFilter
from kgents.synapse.fusion import RecallMode
from tests.helpers import wait_until
from tests.synapse_env import INDEX_KINDS, Env, open_env


@pytest.fixture(params=INDEX_KINDS)
async def env(anchor_settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    async with open_env(anchor_settings, request.param) as opened:
        yield opened


async def test_emoji_only_entries_and_queries(env: Env) -> None:
    env.start()
    g = env.garden()
    party = await g.plant("🎉🎉", "VALUE")
    rockets = await g.plant("I love rockets and space travel", "VALUE")
    await wait_until(env.coherency, lambda r: r.coherent, timeout=15, what="coherency 1.0")
    search = env.recall()
    assert await search.recall("kent", "🚀", mode=RecallMode.DENSE) == [], "an unknown-only query matches nothing"
    hits = await search.recall("kent", "rockets in space", 10, mode=RecallMode.DENSE)
    assert hits and hits[0].entry.id == rockets.id
    assert all(np.isfinite(h.score) for h in hits)
    assert [h.score for h in hits if h.entry.id == party.id] in ([], [0.0]), "a zero vector is close to nothing"
    zero = np.zeros(env.embedder.dimension, dtype=np.float32)
    raw = await env.index.search((await env.current_state()).active.collection, zero, "kent", EntryFilter(), 10)
    assert all(np.isfinite(h.score) and h.score == 0.0 for h in raw), "the index copes with a zero query"

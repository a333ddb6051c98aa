"""A relay that lost its claim never writes the index (issue 7, item 1), on both anchors and both index
adapters. Each race is reproduced step by step: relay A stalls mid-batch (a gate on a real embedder or index),
loses its claim (SQLite: its lease runs out; PostgreSQL: its claim connection dies), relay B applies a DELETE
of the same entry and finishes, then A resumes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from kgents.config import Settings
from kgents.synapse.relay import BatchOutcome, Relay
from tests.helpers import wait_until
from tests.synapse_env import FAST, INDEX_KINDS, Env, open_env
from tests.synapse_support import Gate, PausingEmbedder, PausingIndex, take_claim_away

LONG_LEASE = replace(FAST, lease_s=60.0)
"""A's lease runs out only when the test says so (its renewal would otherwise keep it)."""


@pytest.fixture(params=INDEX_KINDS)
async def env(anchor_settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    async with open_env(anchor_settings, request.param) as opened:
        yield opened


async def _held(gate: Gate) -> bool:
    return gate.entered.is_set()


async def _race(env: Env, a: Relay, gate: Gate) -> tuple[uuid.UUID, BatchOutcome]:
    """Plant and index an entry, change it, let A claim the change and stall at `gate`; meanwhile delete the
    entry, take A's claim away and let B apply the delete; then let A go on. Returns (entry id, A's outcome)."""
    g = env.garden()
    entry = await g.plant("a memory about sailing boats", "INSIGHT")
    b = env.relay()
    await b.drain()
    await g.update(entry.id, content="a changed memory about sailing boats")
    stalled = asyncio.create_task(a.run_once())
    await wait_until(lambda: _held(gate), what="A stalled mid-batch")
    await g.delete(entry.id)
    await take_claim_away(env.queue, a.relay_id, entry.id)
    assert await b.drain() == 2, "B applied the change and the delete"
    assert entry.id not in await env.index.versions(env.state.active.collection)
    gate.opened.set()
    return entry.id, await stalled


async def test_a_relay_that_lost_its_claim_while_embedding_writes_nothing(env: Env) -> None:
    gate = Gate()
    a = env.relay(LONG_LEASE, embedder=PausingEmbedder(env.embedder.inner, gate))
    entry_id, outcome = await _race(env, a, gate)
    assert outcome.lost and outcome.completed == [], "A abandoned the batch"
    assert a.stats.processed == 0 and a.stats.applied_entries == 0, "and counted none of it"
    assert entry_id not in await env.index.versions(env.state.active.collection), "no orphan"
    assert (await env.coherency()).coherent
    assert await env.queue.queue_depth(10) == 0, "nothing was written, so nothing needs requeueing"


async def test_a_write_that_lands_after_the_claim_was_lost_is_repaired(env: Env) -> None:
    """The residual window: A's fence passed, then its upsert was delayed past the loss of its claim and landed
    after B's delete. A notices at settlement and requeues the entry; the next drain removes the orphan."""
    gate = Gate()
    a = Relay(env.queue, PausingIndex(env.index, gate), env.resolve, LONG_LEASE)
    env.relays.append(a)
    entry_id, outcome = await _race(env, a, gate)
    assert outcome.lost and outcome.completed == [] and a.stats.processed == 0
    col = env.state.active.collection
    assert entry_id in await env.index.versions(col), "the stale write landed (the window this test is about)"
    assert await env.queue.queue_depth(10) == 1, "A put the entry back in the queue"
    await env.relay().drain()
    assert entry_id not in await env.index.versions(col)
    assert (await env.coherency()).coherent


async def test_a_relay_that_lost_its_claim_does_not_overwrite_a_replant(env: Env) -> None:
    """Delete and re-plant under the same id while A holds the old row: neither A's stale write nor B's is
    lost; the index ends with the new row."""
    gate = Gate()
    a = Relay(env.queue, PausingIndex(env.index, gate), env.resolve, LONG_LEASE)
    env.relays.append(a)
    g = env.garden()
    entry = await g.plant("a memory about sailing boats", "INSIGHT")
    b = env.relay()
    await b.drain()
    await g.update(entry.id, content="a changed memory about sailing boats")
    stalled = asyncio.create_task(a.run_once())
    await wait_until(lambda: _held(gate), what="A stalled mid-batch")
    await g.delete(entry.id)
    again = await g.plant("a new memory about baking bread", "INSIGHT", entry_id=entry.id)
    await take_claim_away(env.queue, a.relay_id, entry.id)
    await b.drain()
    gate.opened.set()
    assert (await stalled).lost
    await b.drain()
    stored = (await env.index.retrieve(env.state.active.collection, [entry.id]))[entry.id]
    assert stored.version == again.version == 3
    assert (await env.coherency()).coherent

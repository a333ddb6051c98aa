"""The face's inline apply beside a relay: the relay's claim protocol stays whole (never two appliers of one entry
at once, nothing left behind), and a writer that dies between its insert and its apply leaves the rows to a relay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kgents.config import Settings
from kgents.garden.records import Lease
from kgents.memory.local import AsyncMemory
from kgents.resonance.edge import EdgeIndex
from kgents.resonance.server import QdrantServerIndex
from tests.helpers import PG_URL, wait_until
from tests.synapse_env import FAST
from tests.synapse_support import FaultyIndex


@pytest.fixture(params=["sqlite-edge", "postgres-qdrant"])
async def watched(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[AsyncMemory, FaultyIndex]]:
    """A memory over an index that counts concurrent writes per entry."""
    if request.param == "sqlite-edge":
        settings = Settings(home=tmp_path / "home")
        inner: object = EdgeIndex.open(settings.home / "index")
    else:
        schema = request.getfixturevalue("pg_schema")
        settings = Settings(home=tmp_path / "home", postgres_url=PG_URL, postgres_schema=schema)
        inner = QdrantServerIndex.in_memory()
    index = FaultyIndex(inner)
    memory = await AsyncMemory.open(settings, "kent", index=index)  # type: ignore[arg-type]
    try:
        yield memory, index
    finally:
        await memory.close()


async def test_inline_apply_beside_a_running_relay(watched: tuple[AsyncMemory, FaultyIndex]) -> None:
    memory, index = watched
    relay = memory.stack.relay(FAST)
    running = asyncio.create_task(relay.run())
    try:
        entries = await asyncio.gather(*(memory.remember(f"note {i} on small modules") for i in range(30)))
        await asyncio.gather(*(memory.nurture(e.id, evidence="seen again") for e in entries[:10]))
        await asyncio.gather(*(memory.forget(e.id) for e in entries[20:]))
        # every write was searchable when it returned, whoever applied it
        assert len(await memory.recall("small modules", limit=50)) == 20
    finally:
        relay.stop()
        await asyncio.wait_for(running, 10)
    assert index.max_concurrent_per_entry == 1, "an entry was written by two appliers at once"
    assert await memory.stack.queue.queue_depth(100) == 0
    report = await memory.stack.coherency()
    assert report.coherent, report.to_dict()


async def test_a_writer_dead_before_its_apply_leaves_the_rows_to_a_relay(
    watched: tuple[AsyncMemory, FaultyIndex],
) -> None:
    memory, _ = watched
    entry = memory.garden.new_entry("the face died right after its insert", "INSIGHT")
    await memory.garden.plant_many([entry], Lease("a-dead-face", 0.3))  # leased, never applied
    assert await memory.recall("the face died") == []
    relay = memory.stack.relay(FAST)

    async def drained() -> int:
        await relay.run_once()
        return await memory.stack.queue.queue_depth(10)

    await wait_until(drained, lambda depth: depth == 0, what="the relay taking the dead writer's rows")
    assert [h.entry.id for h in await memory.recall("the face died")] == [entry.id]


async def test_face_writes_during_an_in_process_reindex_reach_the_new_collection(tmp_path: Path) -> None:
    """On the embedded index the face keeps the index state instead of reading it (nothing else can change it);
    a reindex in the same process (a server's) must hand it the pending collection and the switch, or a write
    made meanwhile lands only in the collection about to be dropped."""
    settings = Settings(home=tmp_path / "home")
    async with await AsyncMemory.open(settings, "kent") as memory:
        for i in range(300):
            await memory.remember(f"an early note number {i}")
        stack = memory.stack
        rebuilding = asyncio.create_task(stack.reindex(stack.state.active.embedder))
        await wait_until(lambda: stack.queue.read_state(), lambda s: s is not None and s.pending is not None)
        during = [await memory.remember(f"a note written during the reindex {i}") for i in range(20)]
        report = await rebuilding
        after = await stack.coherency()
        assert report.new.collection == stack.state.active.collection
        assert after.coherency_with_truth == 1.0, after.to_dict()
        hits = await memory.recall("written during the reindex", limit=50)
        assert {e.id for e in during} <= {h.entry.id for h in hits}


async def test_a_batch_larger_than_the_lock_table_is_applied(tmp_path: Path, pg_schema: str) -> None:
    """PostgreSQL: a claim takes one advisory lock per entry, and the server's lock table holds a few thousand
    (64 per connection by default); 20,000 entries in one claim failed with "out of shared memory"."""
    from kgents.memory.api import MemoryItem

    settings = Settings(home=tmp_path / "home", postgres_url=PG_URL, postgres_schema=pg_schema, persona="kent")
    async with await AsyncMemory.open(settings, index=QdrantServerIndex.in_memory()) as memory:
        stored = await memory.remember_many([MemoryItem(f"fact {i} about the garden") for i in range(20_000)])
        assert len(stored) == 20_000
        assert not await memory.stack.queue.pending_of([e.id for e in stored])
        hits = await memory.recall("fact 12345 about the garden", limit=3)
        assert hits and hits[0].entry.content == "fact 12345 about the garden"


@pytest.mark.parametrize("change", ["update", "delete"])
async def test_a_change_committed_before_the_inline_claim_is_not_overwritten(
    watched: tuple[AsyncMemory, FaultyIndex], change: str
) -> None:
    """Issue 16 item 3: an update (or delete) commits between a remember's insert and its claim. On PostgreSQL the
    claim takes both outbox rows; applying the state as inserted (version 1) and removing both rows left the index
    at version 1 (or a point of a deleted entry) for good. The written state may stand in for the row only when it
    is the newest version claimed."""
    memory, _ = watched
    plant_many = memory.garden.plant_many

    async def planted_then_changed(entries, lease=None):  # type: ignore[no-untyped-def]
        stored = await plant_many(entries, lease)
        if change == "update":  # another writer's change, committed
            await memory.garden.update(stored[0].id, content="changed before the claim")
        else:
            await memory.garden.delete(stored[0].id)
        return stored

    memory.garden.plant_many = planted_then_changed  # type: ignore[method-assign]
    entry = await memory.remember("written first")
    memory.garden.plant_many = plant_many  # type: ignore[method-assign]
    await memory.stack.relay(FAST).drain(5)  # rows the writer did not claim are a relay's (SQLite)
    report = await memory.stack.coherency()
    assert report.coherent, report.to_dict()
    hits = await memory.recall("changed before the claim written first", limit=5)
    if change == "update":
        assert (await memory.get(entry.id)).version == 2
        assert [h.entry.id for h in hits] == [entry.id]
    else:
        assert hits == [] and report.index_points == 0

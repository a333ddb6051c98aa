"""The Python face, one suite over every way to open it: `memory` yields a `MemoryAPI` (SQLite + the embedded
index, PostgreSQL + a Qdrant index; a server later), and every test holds for each."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kgents import AsyncMemory, EntryFilter, Memory, MemoryItem
from kgents.config import Settings
from kgents.errors import ConflictError, NotFoundError, ValidationError
from kgents.garden.model import EntryType, GardenEntry, Lifecycle
from kgents.garden.service import UPDATABLE
from kgents.memory.api import MemoryAPI
from kgents.memory.remote import RemoteMemory
from kgents.resonance.protocols import VectorIndex
from kgents.resonance.server import QdrantServerIndex
from kgents.synapse.recall import POOL
from tests.helpers import PG_URL
from tests.server_support import running_server
from tests.synapse_support import FaultyIndex

FACES = ["sqlite-edge", "postgres-qdrant", "server-sqlite", "server-postgres"]
"""In this process over each backend, and through a real `kgents serve` process (RemoteMemory over HTTP)."""
DISTRACTORS = [
    "We walked along the river after dinner",
    "The quarterly report is due on Friday",
    "My sister adopted a grey cat last spring",
    "I enjoy painting sunsets on weekends",
]

Opener = Callable[[str], Awaitable[MemoryAPI]]


@pytest.fixture(params=FACES)
def face_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param in ("sqlite-edge", "server-sqlite"):
        return Settings(home=tmp_path / "home")
    # PostgreSQL: in this process with an in-memory Qdrant; through the server with its own embedded index
    return Settings(home=tmp_path / "home", postgres_url=PG_URL, postgres_schema=request.getfixturevalue("pg_schema"))


@pytest.fixture
async def open_memory(request: pytest.FixtureRequest, face_settings: Settings) -> AsyncIterator[Opener]:
    if request.node.callspec.params["face_settings"].startswith("server"):
        with running_server(face_settings) as server:
            remote: list[RemoteMemory] = []

            async def through_server(persona: str) -> MemoryAPI:
                remote.append(RemoteMemory(server.info, persona))
                return remote[-1]

            try:
                yield through_server
            finally:
                for memory in remote:
                    await memory.close()
        return
    async for opener in _in_process(face_settings):
        yield opener


async def _in_process(face_settings: Settings) -> AsyncIterator[Opener]:
    """Opens a memory of a persona over one shared backend (several personas side by side, sharing the first
    one's index: the embedded index has one owner per process)."""
    opened: list[AsyncMemory] = []
    first = None if face_settings.postgres_url is None else QdrantServerIndex.in_memory()

    async def opener(persona: str) -> MemoryAPI:
        shared = opened[0].synapse.index if opened else first
        index: VectorIndex | None = _Shared(shared) if opened and shared is not None else shared
        memory = await AsyncMemory.open(face_settings, persona, index=index)
        opened.append(memory)
        return memory

    try:
        yield opener
    finally:
        for memory in reversed(opened):  # the first, which closes the index, last
            await memory.close()


class _Shared(FaultyIndex):
    """An index several memories share in one test: closing one memory leaves it open."""

    async def close(self) -> None:
        return None


def in_process_only(memory: MemoryAPI) -> AsyncMemory:
    """The memory, for a test that reaches under the face (composting, connections); skipped through a server."""
    if not isinstance(memory, AsyncMemory):
        pytest.skip("reaches under the face (the garden, the stores): in-process only")
    return memory


@pytest.fixture
async def memory(open_memory: Opener) -> MemoryAPI:
    return await open_memory("kent")


async def test_remember_is_searchable_on_return(memory: MemoryAPI) -> None:
    entry = await memory.remember("I prefer minimal code and small modules", tags=["style"])
    assert entry.entry_type is EntryType.INSIGHT and entry.persona == "kent"
    hits = await memory.recall("simplicity in code", limit=3)
    assert [h.entry.id for h in hits][:1] == [entry.id]
    assert hits[0].entry == await memory.get(entry.id)
    assert (await memory.status())["pending"] == 0


async def test_remember_many_and_list(memory: MemoryAPI) -> None:
    items = [MemoryItem(f"fact number {i} about databases", tags=["db"], confidence=0.1 * i) for i in range(1, 6)]
    stored = await memory.remember_many(items)
    assert len(stored) == 5
    listed = await memory.list(EntryFilter(tags=("db",), min_confidence=0.3))
    assert [e.confidence for e in listed] == pytest.approx([0.5, 0.4, 0.3])
    assert len(await memory.recall("databases", limit=10)) == 5
    assert (await memory.status())["entries"] == 5


async def test_get_by_prefix_update_nurture_history(memory: MemoryAPI) -> None:
    entry = await memory.remember("tabs over spaces", type="PREFERENCE")
    assert (await memory.get(str(entry.id)[:8])).id == entry.id
    changed = await memory.update(entry.id, content="spaces over tabs", tags=["style"])
    assert changed.content == "spaces over tabs" and changed.version == entry.version + 1
    hits = await memory.recall("spaces over tabs", limit=1)
    assert hits[0].entry.version == changed.version
    grown = await memory.nurture(entry.id, evidence="said so twice", confidence=0.9)
    assert grown.confidence == 0.9 and grown.evidence == ("said so twice",)
    assert [r.operation.value for r in await memory.history(entry.id)] == ["INSERT", "UPDATE", "UPDATE"]
    with pytest.raises(ValidationError, match="cannot update"):
        await memory.update(entry.id, lifecycle="TREE")


async def test_forget_removes_from_recall(memory: MemoryAPI) -> None:
    entry = await memory.remember("the cat is called Ada")
    await memory.forget(entry.id)
    assert await memory.recall("cat called Ada", limit=5) == []
    with pytest.raises(NotFoundError):
        await memory.get(entry.id)


async def test_a_write_sent_again_is_done_once(memory: MemoryAPI) -> None:
    """Issue 16 items 1-2: a write whose answer was lost is sent again. `remember` under the same entry id answers
    the entry already stored (never a second entry, never a conflict); `forget` of an entry already deleted
    succeeds as the first one did. An id used by other content, or an id never stored, is still refused."""
    chosen = uuid.uuid4()
    first = await memory.remember("sent twice, stored once", tags=["retry"], entry_id=chosen)
    again = await memory.remember("sent twice, stored once", tags=["retry"], entry_id=chosen)
    assert again == first and first.id == chosen and first.version == 1
    batch = [MemoryItem(f"batch item {i}", entry_id=uuid.uuid4()) for i in range(3)]
    assert await memory.remember_many(batch) == await memory.remember_many(batch)
    assert len(await memory.list(EntryFilter(text="sent twice"))) == 1 and len(await memory.list()) == 4
    with pytest.raises(ConflictError, match="other content"):
        await memory.remember("another thing under the same id", entry_id=chosen)
    await memory.forget(chosen)
    await memory.forget(chosen)  # the same forget again: done already
    await memory.forget(str(chosen))
    assert [r.operation.value for r in await memory.history(chosen)] == ["INSERT", "DELETE"]
    with pytest.raises(NotFoundError):
        await memory.forget(uuid.uuid4())  # never stored
    with pytest.raises(NotFoundError):
        await memory.forget(str(chosen)[:8])  # a prefix names only a live entry
    assert chosen not in {h.entry.id for h in await memory.recall("sent twice, stored once")}


async def test_compost_left_out_unless_asked(memory: MemoryAPI) -> None:
    memory = in_process_only(memory)
    entry = await memory.remember("an old habit of long functions")
    await memory.garden.compost(entry.id)
    await memory.indexer.settle([entry.id])
    assert await memory.recall("old habit long functions") == []
    assert await memory.list() == []
    with_compost = await memory.recall("old habit long functions", filters=EntryFilter(include_compost=True))
    assert [h.entry.lifecycle for h in with_compost] == [Lifecycle.COMPOST]
    assert [e.id for e in await memory.list(EntryFilter(lifecycles=(Lifecycle.COMPOST,)))] == [entry.id]


async def test_min_score(memory: MemoryAPI) -> None:
    await memory.remember("I prefer minimal code")
    await memory.remember("the weather in Lisbon is mild")
    hits = await memory.recall("minimal code", limit=5)
    assert len(hits) == 2
    best = hits[0].score
    assert [h.score for h in await memory.recall("minimal code", limit=5, min_score=best - 1e-6)] == [best]


async def test_a_min_score_outside_the_scores_range_is_refused(memory: MemoryAPI) -> None:
    """Scores lie in [0, 1]: a threshold outside can only be a mistake (it once returned nothing, silently)."""
    await memory.remember("I prefer minimal code")
    for bad in (1.5, -0.1):
        with pytest.raises(ValidationError, match="min_score"):
            await memory.recall("minimal code", min_score=bad)


async def test_observed_at_round_trip_and_filters(memory: MemoryAPI) -> None:
    then = datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
    old = await memory.remember("we moved to Lisbon", observed_at=then)
    new = await memory.remember("we moved to Porto")
    assert old.observed_at == then and new.observed_at == new.planted_at
    again = await memory.get(old.id)
    assert again.observed_at == then
    assert GardenEntry.from_dict(again.to_dict()) == again
    recorded = (await memory.history(old.id))[0].new
    assert recorded is not None and datetime.fromisoformat(str(recorded["observed_at"])) == then, "audited too"
    before = EntryFilter(observed_before=then + timedelta(days=1))
    after = EntryFilter(observed_after=then + timedelta(days=1))
    assert [e.id for e in await memory.list(before)] == [old.id]
    assert [e.id for e in await memory.list(after)] == [new.id]
    assert [h.entry.id for h in await memory.recall("we moved", filters=before)] == [old.id]
    assert [h.entry.id for h in await memory.recall("we moved", filters=after)] == [new.id]


async def test_recall_reads_the_time_in_the_question_through_every_face(memory: MemoryAPI) -> None:
    asked = datetime(2024, 5, 15, 10, tzinfo=UTC)
    february = datetime(2024, 2, 2, tzinfo=UTC)
    old = await memory.remember("the billing deploy failed on the migration", observed_at=february)
    recent = await memory.remember("the billing deploy failed", observed_at=datetime(2024, 5, 8, tzinfo=UTC))
    question = "What did I say about the billing deploy last week?"
    hits = await memory.recall(question, explain=True, asked_at=asked)
    assert [h.entry.id for h in hits] == [recent.id, old.id]
    assert hits[0].explain["time"]["use"] == "boost" and hits[0].explain["in_time"] is True
    assert hits[1].explain["in_time"] is False and hits[1].score < hits[0].score
    later = await memory.recall(question, explain=True, asked_at=asked + timedelta(days=90))
    assert later[0].explain["in_time"] is False, "last week of another asking time"
    with pytest.raises(ValidationError, match="asked_at"):
        await memory.recall(question, asked_at=datetime(2024, 5, 15))  # no time zone


async def test_personas_are_isolated(open_memory: Opener) -> None:
    kent = await open_memory("kent")
    ada = await open_memory("ada")
    mine = await kent.remember("kent likes strong coffee")
    await ada.remember("ada likes green tea")
    assert [h.entry.persona for h in await ada.recall("coffee", limit=10)] == ["ada"]
    assert [e.persona for e in await ada.list()] == ["ada"]
    for call in (ada.get(mine.id), ada.forget(mine.id), ada.nurture(mine.id), ada.history(mine.id)):
        with pytest.raises(NotFoundError):
            await call
    with pytest.raises(NotFoundError):
        await ada.get(str(mine.id)[:8])
    assert (await kent.get(mine.id)).content == "kent likes strong coffee"


async def test_soul_and_status(memory: MemoryAPI) -> None:
    soul = await memory.soul()
    assert soul.soul_id == "kent" and soul.source == "new"
    changed = await memory.set_mode("challenge")
    assert changed.mode == "CHALLENGE"
    status = await memory.status()
    assert status["entries"] == 0 and status["pending"] == 0 and status["soul_source"] in {"cache", "snapshot"}


async def test_bad_input_is_a_clear_error(memory: MemoryAPI) -> None:
    with pytest.raises(ValidationError):
        await memory.recall("   ")
    with pytest.raises(ValidationError):
        await memory.recall("x", limit=0)
    with pytest.raises(ValidationError):
        await memory.remember("x", type="NOPE")
    assert await memory.list() == []


def test_sync_memory_from_plain_code(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    with Memory(persona="kent", settings=settings) as m:
        entry = m.remember("I prefer minimal code")
        assert m.recall("minimal code")[0].entry.id == entry.id
        dense = m.recall("minimal code", mode="dense", asked_at=datetime(2024, 5, 15, tzinfo=UTC), explain=True)
        assert dense[0].entry.id == entry.id and dense[0].explain["dense_rank"] == 1
        assert m.list()[0].id == entry.id
    m.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        m.list()


async def test_sync_memory_inside_a_running_loop(tmp_path: Path) -> None:
    """As in Jupyter: a loop is running in this thread, and the synchronous face still works."""
    m = Memory(persona="kent", settings=Settings(home=tmp_path / "home"))
    try:
        entry = m.remember("notebooks are fine")
        assert m.get(entry.id).content == "notebooks are fine"
        await asyncio.sleep(0)  # our own loop is untouched
    finally:
        m.close()
        m.close()


def test_import_kgents_is_light() -> None:
    import subprocess
    import sys

    code = "import sys, kgents; print(sorted(m for m in ('asyncpg', 'qdrant_client', 'numpy') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    assert uuid  # imported for typing of ids in other tests


def test_memory_goes_through_the_home_server(tmp_path: Path) -> None:
    """`Memory()` on a home whose server runs talks to it (the server owns the embedded index)."""
    settings = Settings(home=tmp_path / "home")
    with running_server(settings) as server:
        with Memory(persona="kent", settings=settings) as m:
            assert isinstance(m.inner, RemoteMemory) and m.inner.server.url == server.url
            entry = m.remember("I prefer minimal code")
            assert m.recall("minimal code")[0].entry.id == entry.id
        with Memory(persona="kent", settings=Settings(home=tmp_path / "other")) as elsewhere:
            assert isinstance(elsewhere.inner, AsyncMemory)  # another home: in this process


async def test_compost_crowding_the_nearest_still_leaves_the_live_entries(memory: MemoryAPI) -> None:
    """The index is asked without the COMPOST condition first; when COMPOST crowds the page, it is asked again."""
    memory = in_process_only(memory)
    crowd = await memory.remember_many([MemoryItem(f"the same old habit {i}") for i in range(6)])
    live = await memory.remember("a habit of mine, rather different")
    for entry in crowd:
        await memory.garden.compost(entry.id)
    await memory.indexer.settle([e.id for e in crowd])
    assert [h.entry.id for h in await memory.recall("the same old habit", limit=1)] == [live.id]


async def test_recall_is_hybrid_and_explains_both_ranks(memory: MemoryAPI) -> None:
    """A rare name (lexical) and a paraphrase (dense) are both found; explain shows each signal's rank."""
    await memory.remember_many([MemoryItem(text) for text in DISTRACTORS])
    rare = await memory.remember("Caroline finally met Zorblax at the harbour market")
    minimal = await memory.remember("I prefer minimal code", type="PREFERENCE")
    assert [h.entry.id for h in await memory.recall("zorblax", limit=3)][:1] == [rare.id]
    assert [h.entry.id for h in await memory.recall("keep the code small and simple", limit=3)][:1] == [minimal.id]
    best = (await memory.recall("Zorblax the harbour", limit=3, explain=True))[0]
    assert best.entry.id == rare.id
    assert best.explain["lexical_rank"] == 1 and best.explain["dense_rank"] is not None
    assert best.explain["fused"] == pytest.approx(best.score, abs=1e-6), "the score shown is the fused one (6 places)"
    assert (await memory.recall("Zorblax the harbour", limit=3))[0].explain == {}


async def test_compost_crowding_both_candidate_pools_still_leaves_the_live_entry(memory: MemoryAPI) -> None:
    """More COMPOST entries than a signal's candidate pool, all ranking above the live one in both signals."""
    memory = in_process_only(memory)
    crowd = await memory.remember_many([MemoryItem(f"the same old habit, same old habit {i}") for i in range(POOL + 5)])
    live = await memory.remember("a habit of mine, rather different")
    for entry in crowd:
        await memory.garden.compost(entry.id)
    await memory.indexer.settle([e.id for e in crowd])
    assert [h.entry.id for h in await memory.recall("the same old habit", limit=1)] == [live.id]


async def test_one_connection_for_garden_relay_and_soul(memory: MemoryAPI) -> None:
    """One open: the garden, the relay side and the soul's snapshots share one SQLite connection or one pool."""
    memory = in_process_only(memory)
    store, queue, snapshots = memory.garden.store, memory.synapse.queue, memory.souls.snapshots
    if store.backend == "sqlite":
        shared = {id(store.anchor), id(queue.db), id(snapshots._db)}  # type: ignore[attr-defined]
    else:
        shared = {id(store.anchor.pool), id(queue.pool), id(snapshots._pool)}  # type: ignore[attr-defined]
    assert len(shared) == 1


async def test_reassess_compost_with_successor_nudge_and_interactions(memory: MemoryAPI) -> None:
    old = await memory.remember("I always use tabs", type=EntryType.PREFERENCE, confidence=0.8)
    lowered = await memory.reassess(old.id, confidence=0.3, evidence="said spaces are fine now")
    assert (lowered.confidence, lowered.lifecycle) == (0.3, Lifecycle.SEED)
    assert "said spaces are fine now" in lowered.evidence
    new = await memory.remember("I use spaces now", type=EntryType.PREFERENCE)
    gone = await memory.compost(str(old.id)[:8], successor=new.id, evidence="changed their mind")
    assert gone.lifecycle is Lifecycle.COMPOST and f"superseded-by:{new.id}" in gone.tags
    assert [h.entry.id for h in await memory.recall("tabs or spaces")] == [new.id], "COMPOST is left out"
    before = await memory.soul()
    after = await memory.nudge({"joy": 0.04, "aesthetic": -5.0})
    assert after.eigenvectors["joy"][0] == pytest.approx(min(1.0, before.eigenvectors["joy"][0] + 0.04))
    assert after.eigenvectors["aesthetic"][0] == 0.0, "kept within [0, 1]"
    counted = await memory.record_interaction(tokens=12)
    assert counted.interactions == after.interactions + 1
    with pytest.raises(ValidationError):
        await memory.reassess(new.id, confidence=1.5)


async def test_update_changes_every_documented_field(memory: MemoryAPI) -> None:
    """One list of updatable fields (the garden's `UPDATABLE`), each changed through the face (in process and
    through the server's HTTP API), read back from the truth and carried to the index."""
    entry = await memory.remember("I like tea", tags=["drinks"])
    cases: dict[str, tuple[Any, Callable[[GardenEntry], Any]]] = {
        "content": ("I like green tea in the morning", lambda e: e.content),
        "type": ("PREFERENCE", lambda e: e.entry_type.value),
        "tags": (["drinks", "green"], lambda e: list(e.tags)),
        "confidence": (0.8, lambda e: e.confidence),
        "evidence": (["said so twice"], lambda e: list(e.evidence)),
        "affinities": ({"joy": 0.7}, lambda e: dict(e.eigenvector_affinities)),
    }
    assert set(cases) == set(UPDATABLE), "a test for each documented field"
    for name, (value, read) in cases.items():
        changed = await memory.update(entry.id, **{name: value})
        assert read(changed) == value and read(await memory.get(entry.id)) == value, name
    now = await memory.get(entry.id)
    assert now.lifecycle is Lifecycle.TREE and now.version == 1 + len(cases), "the stage follows the confidence"
    hit = (await memory.recall("green tea in the morning", limit=1))[0]
    assert (hit.entry.id, hit.entry.version, hit.entry.confidence) == (entry.id, now.version, 0.8)
    lowered = await memory.update(entry.id, confidence=0.2)
    assert lowered.lifecycle is Lifecycle.SEED, "both ways, as reassess"
    with pytest.raises(ValidationError, match="cannot update lifecycle; updatable: content, type, tags, confidence"):
        await memory.update(entry.id, lifecycle="FLOWER")
    with pytest.raises(ValidationError):
        await memory.update(entry.id, evidence="one bare string")
    with pytest.raises(ValidationError):
        await memory.update(entry.id, confidence=1.5)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
async def test_a_nudge_that_is_not_a_finite_number_is_refused(memory: MemoryAPI, bad: float) -> None:
    """NaN or an infinity is refused by the soul model itself, so every door refuses it (in process and through the
    server's HTTP API alike), and the soul is left as it was (it used to store 0.0 or 1.0)."""
    before = await memory.soul()
    with pytest.raises(ValidationError, match="finite number"):
        await memory.nudge({"joy": 0.01, "aesthetic": bad})
    with pytest.raises(ValidationError, match="finite number"):
        await memory.nudge({"joy": bad})
    after = await memory.soul()
    assert (after.eigenvectors, after.revision) == (before.eigenvectors, before.revision)


async def test_recall_modes_score_on_their_own_scales(memory: MemoryAPI) -> None:
    await memory.remember("I prefer minimal code", type=EntryType.PREFERENCE)
    await memory.remember("Zanzibar trip with Oskar in June")
    dense = await memory.recall("keep the code small", mode="dense")
    assert dense[0].entry.content == "I prefer minimal code" and 0.0 < dense[0].score <= 1.0
    lexical = await memory.recall("Oskar", mode="lexical")
    assert [h.entry.content for h in lexical] == ["Zanzibar trip with Oskar in June"], "words only"
    with pytest.raises(ValidationError):
        await memory.recall("code", mode="telepathy")

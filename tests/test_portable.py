"""Export, import and forget a persona, on both anchors, with a real index and a real Redis Spark."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from kgents import AsyncMemory, EntryFilter, MemoryItem
from kgents.config import Settings
from kgents.errors import ConflictError, ValidationError
from kgents.garden.model import GardenEntry
from kgents.garden.service import PersonaGarden
from kgents.memory import portable
from kgents.memory.forget import forget_persona
from kgents.memory.portable import (
    bundle_lines,
    parse_bundle,
    read_bundle,
    retarget,
    retargeted_id,
    write_bundle,
)
from kgents.resonance.server import QdrantServerIndex
from kgents.soul.snapshot import SnapshotStore
from kgents.synapse.fusion import RecallMode
from tests.helpers import REDIS_URL, unique_name
from tests.soul.conftest import delete_prefix
from tests.synapse_support import FaultyIndex

QUERIES = ("minimal code", "tea in the morning", "long walks")


@pytest.fixture
def spark_prefix() -> Iterator[str]:
    prefix = unique_name("t")
    yield prefix
    delete_prefix(REDIS_URL, prefix)


@pytest.fixture
async def memory(anchor_settings: Settings, spark_prefix: str) -> AsyncIterator[AsyncMemory]:
    """Kent's memory over each anchor (SQLite + the embedded index, PostgreSQL + a Qdrant index), Redis Spark."""
    settings = replace(anchor_settings, redis_url=REDIS_URL, spark_prefix=spark_prefix, persona="kent")
    index = QdrantServerIndex.in_memory() if settings.postgres_url else None
    opened = await AsyncMemory.open(settings, index=index)
    try:
        yield opened
    finally:
        await opened.close()


def snapshots_of(memory: AsyncMemory) -> SnapshotStore:
    return memory.souls.snapshots


async def fill(memory: AsyncMemory) -> None:
    """Entries of kent (nurtured, grown, composted, observed earlier) and of ana, and kent's soul in CHALLENGE."""
    kent, ana = memory.garden, PersonaGarden(memory.garden.store, "ana")
    code = await memory.remember("I prefer minimal code", type="PREFERENCE", tags=["style", "code"], confidence=0.6)
    await memory.nurture(code.id, evidence="deleted a wrapper class")
    tea = await memory.remember(
        "Green tea in the morning, never coffee",
        type="BEHAVIOR",
        affinities={"joy": 0.7},
        observed_at=datetime(2025, 3, 1, 8, 30, tzinfo=UTC),
    )
    await kent.grow(tea.id)
    gone = await memory.remember("Long walks after lunch", type="PATTERN")
    await kent.compost(gone.id)
    await memory.remember("Unicode: café, 日本語, emoji 🌱\nsecond line", evidence=["said so"])
    await ana.plant("Ana likes long walks", "PREFERENCE")
    await memory.set_mode("challenge")
    await drained(memory)


async def drained(memory: AsyncMemory) -> None:
    assert (await memory.stack.catch_up(30)).caught_up
    report = await memory.stack.coherency()
    assert report.coherent, report


async def searches(memory: AsyncMemory, persona: str) -> list[list[tuple[str, float]]]:
    search = memory.stack.recall()
    found = []
    for query in QUERIES:
        hits = await search.recall(persona, query, 5, EntryFilter(include_compost=True), mode=RecallMode.DENSE)
        found.append([(str(h.entry.id), round(h.score, 5)) for h in hits])
    return found


async def forget(memory: AsyncMemory, persona: str, purge: bool = False) -> Any:
    stack = memory.stack
    collections = [t.collection for t in (await stack.refresh_state()).targets()]
    return await forget_persona(stack.store, stack.index, collections, memory.souls.spark, persona, purge_history=purge)


async def test_export_forget_import_restores_entries_and_search(memory: AsyncMemory) -> None:
    await fill(memory)
    exported = bundle_lines(await read_bundle(memory.garden.store, snapshots_of(memory), "kent"))
    before = await searches(memory, "kent")
    ana_before = await searches(memory, "ana")
    assert len(exported) == 1 + 4 + 1, "header, four entries (the COMPOST one too), one soul"

    report = await forget(memory, "kent")
    assert (report.entries, report.points) == (4, 4)
    assert await searches(memory, "kent") == [[], [], []]
    assert await memory.garden.count() == 0

    imported = await write_bundle(memory.garden.store, snapshots_of(memory), parse_bundle(exported))
    assert (imported.entries_added, imported.souls_added) == (4, 1)
    await drained(memory)
    assert await searches(memory, "kent") == before, "the same entries are found, with the same scores"
    assert await searches(memory, "ana") == ana_before, "another persona never moved"
    again = bundle_lines(await read_bundle(memory.garden.store, snapshots_of(memory), "kent"))
    assert "\n".join(again).encode() == "\n".join(exported).encode(), "byte for byte"
    recovered = await memory.souls.recover("kent")
    assert recovered.state.mode.value == "CHALLENGE" and recovered.source.value == "snapshot"


async def test_import_is_idempotent_by_id_and_keeps_dates(memory: AsyncMemory) -> None:
    await fill(memory)
    bundle = parse_bundle(bundle_lines(await read_bundle(memory.garden.store, snapshots_of(memory), "kent")))
    again = await write_bundle(memory.garden.store, snapshots_of(memory), bundle)
    assert (again.entries_added, again.entries_present, again.souls_added, again.souls_present) == (0, 4, 0, 1)

    copy = retarget(bundle, "kent-copy")  # the same anchor: the copies take ids of their own
    assert [e.id for e in copy.entries] == [retargeted_id(e.id, "kent-copy") for e in bundle.entries]
    report = await write_bundle(memory.garden.store, snapshots_of(memory), copy)
    assert (report.entries_added, report.souls_added) == (4, 1)
    again = await write_bundle(memory.garden.store, snapshots_of(memory), retarget(bundle, "kent-copy"))
    assert (again.entries_added, again.entries_present) == (0, 4), "idempotent: the same ids again"
    assert await memory.garden.count() == 4, "the original never moved"
    stored = {e.content: e for e in await PersonaGarden(memory.garden.store, "kent-copy").query()}
    for entry in copy.entries:
        kept = stored[entry.content]
        assert (kept.id, kept.planted_at, kept.last_nurtured, kept.version) == (
            entry.id,
            entry.planted_at,
            entry.last_nurtured,
            entry.version,
        )


async def test_a_copy_keeps_its_supersession_pointers_among_its_own_entries(memory: AsyncMemory) -> None:
    old = await memory.remember("Coffee in the morning", type="BEHAVIOR")
    new = await memory.remember("Tea in the morning, never coffee", type="BEHAVIOR")
    await memory.garden.compost(old.id, successor=new.id)
    bundle = parse_bundle(bundle_lines(await read_bundle(memory.garden.store, snapshots_of(memory), "kent")))
    await write_bundle(memory.garden.store, snapshots_of(memory), retarget(bundle, "kent-copy"))
    copy_garden = PersonaGarden(memory.garden.store, "kent-copy")
    copies = {e.content: e for e in await copy_garden.query(EntryFilter(include_compost=True))}
    old_copy, new_copy = copies[old.content], copies[new.content]
    assert new_copy.id == retargeted_id(new.id, "kent-copy") != new.id
    assert f"superseded-by:{new_copy.id}" in old_copy.tags and f"superseded by {new_copy.id}" in old_copy.evidence
    assert not any(str(new.id) in t for t in (*old_copy.tags, *old_copy.evidence)), "no pointer into kent"


async def test_ids_held_by_another_persona_are_refused_without_saying_whose(memory: AsyncMemory) -> None:
    await fill(memory)
    bundle = parse_bundle(bundle_lines(await read_bundle(memory.garden.store, snapshots_of(memory), "kent")))
    posing = replace(bundle, persona="bob", entries=tuple(replace(e, persona="bob") for e in bundle.entries), souls=())
    with pytest.raises(ConflictError) as caught:
        await write_bundle(memory.garden.store, snapshots_of(memory), posing)
    message = str(caught.value)
    assert message.startswith("nothing imported: some of the file's entry ids cannot be used for bob")
    assert "kent" not in message and "exists" not in message and "another persona" not in message
    assert await PersonaGarden(memory.garden.store, "bob").count() == 0, "nothing written"


async def sqlite_rows(memory: AsyncMemory, sql: str, params: Sequence[Any]) -> list[Any]:
    db = memory.garden.store.anchor  # type: ignore[attr-defined]
    return list(await db.run(lambda: db.conn.execute(sql, params).fetchall()))


async def rows_of(memory: AsyncMemory, persona: str) -> dict[str, int]:
    """How many rows of `persona` each anchor table holds."""
    tables = ("persona_garden", "garden_outbox", "garden_audit", "synapse_dead_letter", "soul_snapshot")
    counts: dict[str, int] = {}
    for table in tables:
        sql = f"SELECT count(*) FROM {table} WHERE persona = "  # noqa: S608
        if memory.settings.postgres_url:
            counts[table] = int(await memory.garden.store.anchor.pool.fetchval(sql + "$1", persona))  # type: ignore[attr-defined]
        else:
            counts[table] = int((await sqlite_rows(memory, sql + "?", (persona,)))[0][0])
    return counts


async def tombstones(memory: AsyncMemory, ids: list[str]) -> int:
    if memory.settings.postgres_url:
        sql = "SELECT count(*) FROM garden_tombstone WHERE id = ANY($1::uuid[])"
        return int(await memory.garden.store.anchor.pool.fetchval(sql, ids))  # type: ignore[attr-defined]
    marks = ",".join("?" * len(ids))
    return int((await sqlite_rows(memory, f"SELECT count(*) FROM garden_tombstone WHERE id IN ({marks})", ids))[0][0])  # noqa: S608


async def persona_tombstones(memory: AsyncMemory) -> list[tuple[str, int, bool]]:
    sql = "SELECT persona, entries, purged_history FROM persona_tombstone ORDER BY seq"
    if memory.settings.postgres_url:
        rows = await memory.garden.store.anchor.pool.fetch(sql)  # type: ignore[attr-defined]
    else:
        rows = await sqlite_rows(memory, sql, ())
    return [(r[0], int(r[1]), bool(r[2])) for r in rows]


@pytest.mark.parametrize("purge", [False, True])
async def test_forget_leaves_no_trace(memory: AsyncMemory, purge: bool) -> None:
    await fill(memory)
    ids = [str(e.id) for e in await memory.garden.query()]
    await memory.garden.delete(ids[0])  # an entry deleted before: its id tombstone goes too
    ana = await rows_of(memory, "ana")
    redis = memory.souls.spark.client  # type: ignore[attr-defined]
    assert [k async for k in redis.scan_iter(match=f"kgents:{memory.settings.spark_prefix}:soul:kent:*")]

    await forget(memory, "kent", purge)

    left = await rows_of(memory, "kent")
    assert left == {**dict.fromkeys(left, 0), "garden_audit": left["garden_audit"]}
    assert (left["garden_audit"] == 0) is purge, "the audit rows go only with --purge-history"
    assert await tombstones(memory, ids) == 0
    assert await persona_tombstones(memory) == [("kent", 3, purge)]
    collection = (await memory.stack.refresh_state()).active.collection
    assert all(owner != "kent" for owner, _v in (await memory.stack.index.versions(collection)).values())
    assert [k async for k in redis.scan_iter(match=f"kgents:{memory.settings.spark_prefix}:*:kent:*")] == []
    assert await memory.souls.spark.get("kent", "kent") is None, "a cache read finds nothing"
    report = await memory.stack.coherency()
    assert report.coherent and report.missing == 0 and report.orphaned == 0
    assert await searches(memory, "kent") == [[], [], []]
    assert await rows_of(memory, "ana") == ana, "another persona is untouched"


async def test_forget_deletes_by_persona_without_reading_every_point(memory: AsyncMemory) -> None:
    """The index deletes kent's points by a persona filter: no scan of every point (ana's too) on the way."""
    await fill(memory)
    collection = (await memory.stack.refresh_state()).active.collection
    watched = FaultyIndex(memory.stack.index)
    kent_points = sum(owner == "kent" for owner, _v in (await memory.stack.index.versions(collection)).values())
    report = await forget_persona(memory.stack.store, watched, [collection], memory.souls.spark, "kent")
    assert watched.version_scans == 0, "forget read every point of the collection"
    assert report.points == kent_points == 4
    owners = [owner for owner, _v in (await memory.stack.index.versions(collection)).values()]
    assert owners == ["ana"], "only kent's points went"


def test_a_bad_line_is_named_and_nothing_parsed() -> None:
    header = '{"entries":1,"format":"kgents-memory","persona":"kent","souls":0,"version":1}'
    entry = (
        '{"confidence":0.5,"content":"x","eigenvector_affinities":{},"entry_type":"INSIGHT","evidence":[],'
        f'"id":"{uuid.uuid4()}","kind":"entry","last_nurtured":"2026-01-01T00:00:00+00:00","lifecycle":"SEED",'
        '"planted_at":"2026-01-01T00:00:00+00:00","tags":[],"version":1}'
    )
    assert len(parse_bundle([header, entry]).entries) == 1
    bad_confidence = entry.replace('"confidence":0.5', '"confidence":7')
    cases = [
        ("line 2: confidence must be in [0, 1]", [header, bad_confidence]),
        ("line 1: not a kgents memory export", ['{"format":"other"}', entry]),
        ("line 2: not JSON", [header, "{oops"]),
        ("line 3: ", [header.replace('"entries":1', '"entries":2'), entry, entry]),
        ("line 2: the header announces 1 entries", [header]),
        ("line 1: the file is empty", []),
    ]
    for message, lines in cases:
        with pytest.raises(ValidationError) as raised:
            parse_bundle(lines)
        assert str(raised.value).startswith(message), (message, str(raised.value))


async def test_export_pages_by_key_so_deletions_skip_nothing(
    memory: AsyncMemory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries of the first page deleted while the export reads on: every entry still there is exported (paged
    by OFFSET, the next page would skip as many as were deleted)."""
    made = await memory.remember_many([MemoryItem(f"fact {i} about the garden") for i in range(7)])
    monkeypatch.setattr(portable, "_PAGE", 2)
    store = memory.garden.store
    query = store.query
    pages: list[list[GardenEntry]] = []

    async def query_then_delete(persona: str, flt: Any, page: Any = None, **kwargs: Any) -> list[GardenEntry]:
        found = await query(persona, flt, page, **kwargs)
        if not pages:  # the first page read: its entries go
            for entry in found:
                await store.delete(persona, entry.id)
        pages.append(found)
        return found

    monkeypatch.setattr(store, "query", query_then_delete)
    bundle = await read_bundle(store, snapshots_of(memory), "kent")
    gone = {e.id for e in pages[0]}
    exported = [e.id for e in bundle.entries]
    assert len(exported) == len(set(exported)) == 7, "the first page as read, and every entry still there, once"
    assert set(exported) == {e.id for e in made} and len(gone) == 2
    keys = [(e.observed_at, str(e.id)) for e in bundle.entries]
    assert keys == sorted(keys), "oldest observed first"


async def test_a_large_memory_exports_whole(memory: AsyncMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    """More entries than a page holds, read page by page (a page of 100 here; bench/proportional.py exports at the
    real page size): every entry once. 10,050 entries at the real size hung in teardown in 2 of 5 full runs and
    once beside another file on a loaded machine (issue 19's closing note): kept small until that is understood."""
    monkeypatch.setattr(portable, "_PAGE", 100)
    items = [MemoryItem(f"fact {i} about the garden", tags=["bulk"]) for i in range(250)]
    await memory.remember_many(items)
    bundle = await read_bundle(memory.garden.store, snapshots_of(memory), "kent")
    assert len(bundle.entries) == len({e.id for e in bundle.entries}) == 250, "three pages, every entry once"
    assert len(parse_bundle(bundle_lines(bundle)).entries) == 250


async def test_an_entry_planted_again_under_its_id_meanwhile_is_exported_once(
    memory: AsyncMemory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An entry of the first page forgotten and planted again under its id (a later observed time) while the export
    reads on: the bundle still names each id once, so it imports."""
    await memory.remember_many([MemoryItem(f"fact {i} about the garden") for i in range(5)])
    monkeypatch.setattr(portable, "_PAGE", 2)
    store = memory.garden.store
    query = store.query
    pages: list[list[GardenEntry]] = []

    async def query_then_replant(persona: str, flt: Any, page: Any = None, **kwargs: Any) -> list[GardenEntry]:
        found = await query(persona, flt, page, **kwargs)
        if not pages:
            await memory.forget(found[0].id)
            await memory.remember("planted again", entry_id=found[0].id)
        pages.append(found)
        return found

    monkeypatch.setattr(store, "query", query_then_replant)
    bundle = await read_bundle(store, snapshots_of(memory), "kent")
    exported = [e.id for e in bundle.entries]
    assert len(exported) == len(set(exported)) == 5, exported
    parse_bundle(bundle_lines(bundle))

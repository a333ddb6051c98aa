"""Export, import and forget a persona, on both anchors, with a real index and a real Redis Spark."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import replace
from typing import Any

import pytest

from kgents.config import Settings
from kgents.errors import ValidationError
from kgents.garden.model import EntryType
from kgents.memory.forget import forget_persona
from kgents.memory.portable import bundle_lines, parse_bundle, read_bundle, retarget, write_bundle
from kgents.soul import SoulService, open_service
from kgents.soul.snapshot import SnapshotStore
from tests.helpers import REDIS_URL, unique_name
from tests.soul.conftest import delete_prefix
from tests.synapse_env import Env, open_env

QUERIES = ("minimal code", "tea in the morning", "long walks")


@pytest.fixture
def spark_prefix() -> Iterator[str]:
    prefix = unique_name("t")
    yield prefix
    delete_prefix(REDIS_URL, prefix)


@pytest.fixture
async def env(anchor_settings: Settings, spark_prefix: str) -> AsyncIterator[Env]:
    settings = replace(anchor_settings, redis_url=REDIS_URL, spark_prefix=spark_prefix)
    async with open_env(settings) as opened:
        yield opened


@pytest.fixture
async def soul(env: Env) -> AsyncIterator[SoulService]:
    service = await open_service(env.settings.with_persona("kent"), strict_spark=True)
    try:
        yield service
    finally:
        await service.close()


def snapshots_of(soul: SoulService) -> SnapshotStore:
    return soul.snapshots  # the anchor's snapshot store, opened beside the Spark


async def fill(env: Env, soul: SoulService) -> None:
    """Entries of kent (nurtured, grown, composted) and of ana, and kent's soul in CHALLENGE mode."""
    kent, ana = env.garden("kent"), env.garden("ana")
    code = await kent.plant("I prefer minimal code", EntryType.PREFERENCE, tags=["style", "code"], confidence=0.6)
    await kent.nurture(code.id, evidence="deleted a wrapper class")
    tea = await kent.plant("Green tea in the morning, never coffee", "BEHAVIOR", eigenvector_affinities={"joy": 0.7})
    await kent.grow(tea.id)
    gone = await kent.plant("Long walks after lunch", "PATTERN")
    await kent.compost(gone.id)
    await kent.plant("Unicode: café, 日本語, emoji 🌱\nsecond line", "INSIGHT", evidence=["said so"])
    await ana.plant("Ana likes long walks", "PREFERENCE")
    await soul.recover("kent")
    await soul.set_mode("kent", "challenge")
    await drained(env)


async def drained(env: Env) -> None:
    relay = env.relay()
    while await relay.drain(5.0):
        pass
    report = await env.coherency()
    assert report.coherent, report


async def searches(env: Env, persona: str) -> list[list[tuple[str, float]]]:
    search = env.search()
    found = []
    for query in QUERIES:
        hits = await search.find_by_semantic_similarity(persona, query, limit=5)
        found.append([(str(h.entry.id), round(h.score, 5)) for h in hits])
    return found


async def forget(env: Env, soul: SoulService, persona: str, purge: bool = False) -> Any:
    collections = [t.collection for t in (await env.current_state()).targets()]
    return await forget_persona(env.store, env.index, collections, soul.spark, persona, purge_history=purge)


async def test_export_forget_import_restores_entries_and_search(env: Env, soul: SoulService) -> None:
    await fill(env, soul)
    exported = bundle_lines(await read_bundle(env.store, snapshots_of(soul), "kent"))
    before = await searches(env, "kent")
    ana_before = await searches(env, "ana")
    assert len(exported) == 1 + 4 + 1, "header, four entries (the COMPOST one too), one soul"

    report = await forget(env, soul, "kent")
    assert (report.entries, report.points) == (4, 4)
    assert await searches(env, "kent") == [[], [], []]
    assert await env.garden("kent").count() == 0

    imported = await write_bundle(env.store, snapshots_of(soul), parse_bundle(exported))
    assert (imported.entries_added, imported.souls_added) == (4, 1)
    await drained(env)
    assert await searches(env, "kent") == before, "the same entries are found, with the same scores"
    assert await searches(env, "ana") == ana_before, "another persona never moved"
    again = bundle_lines(await read_bundle(env.store, snapshots_of(soul), "kent"))
    assert "\n".join(again).encode() == "\n".join(exported).encode(), "byte for byte"
    recovered = await soul.recover("kent")
    assert recovered.state.mode.value == "CHALLENGE" and recovered.source.value == "snapshot"


async def test_import_is_idempotent_by_id_and_keeps_dates(env: Env, soul: SoulService) -> None:
    await fill(env, soul)
    bundle = parse_bundle(bundle_lines(await read_bundle(env.store, snapshots_of(soul), "kent")))
    again = await write_bundle(env.store, snapshots_of(soul), bundle)
    assert (again.entries_added, again.entries_present, again.souls_added, again.souls_present) == (0, 4, 0, 1)

    copy = retarget(bundle, "kent-copy")
    with pytest.raises(Exception, match="already exists"):  # ids are global: another persona's ids conflict
        await write_bundle(env.store, snapshots_of(soul), copy)
    assert await env.garden("kent-copy").count() == 0, "nothing written"

    fresh = replace(copy, entries=tuple(replace(e, id=uuid.uuid4()) for e in copy.entries))
    report = await write_bundle(env.store, snapshots_of(soul), fresh)
    assert report.entries_added == 4
    stored = {e.content: e for e in await env.garden("kent-copy").query()}
    for entry in fresh.entries:
        kept = stored[entry.content]
        assert (kept.planted_at, kept.last_nurtured, kept.version) == (
            entry.planted_at,
            entry.last_nurtured,
            entry.version,
        )


async def sqlite_rows(env: Env, sql: str, params: Sequence[Any]) -> list[Any]:
    anchor = env.store.anchor  # type: ignore[attr-defined]
    return list(await anchor.run(lambda: anchor.conn.execute(sql, params).fetchall()))


async def rows_of(env: Env, persona: str) -> dict[str, int]:
    """How many rows of `persona` each anchor table holds."""
    tables = ("persona_garden", "garden_outbox", "garden_audit", "synapse_dead_letter", "soul_snapshot")
    counts: dict[str, int] = {}
    for table in tables:
        sql = f"SELECT count(*) FROM {table} WHERE persona = "  # noqa: S608
        if env.settings.postgres_url:
            counts[table] = int(await env.store.pool.fetchval(sql + "$1", persona))  # type: ignore[attr-defined]
        else:
            counts[table] = int((await sqlite_rows(env, sql + "?", (persona,)))[0][0])
    return counts


async def tombstones(env: Env, ids: list[str]) -> int:
    if env.settings.postgres_url:
        sql = "SELECT count(*) FROM garden_tombstone WHERE id = ANY($1::uuid[])"
        return int(await env.store.pool.fetchval(sql, ids))  # type: ignore[attr-defined]
    marks = ",".join("?" * len(ids))
    return int((await sqlite_rows(env, f"SELECT count(*) FROM garden_tombstone WHERE id IN ({marks})", ids))[0][0])  # noqa: S608


async def persona_tombstones(env: Env) -> list[tuple[str, int, bool]]:
    sql = "SELECT persona, entries, purged_history FROM persona_tombstone ORDER BY seq"
    if env.settings.postgres_url:
        rows = await env.store.pool.fetch(sql)  # type: ignore[attr-defined]
    else:
        rows = await sqlite_rows(env, sql, ())
    return [(r[0], int(r[1]), bool(r[2])) for r in rows]


@pytest.mark.parametrize("purge", [False, True])
async def test_forget_leaves_no_trace(env: Env, soul: SoulService, purge: bool) -> None:
    await fill(env, soul)
    ids = [str(e.id) for e in await env.garden("kent").query()]
    await env.garden("kent").delete(ids[0])  # an entry deleted before: its id tombstone goes too
    ana = await rows_of(env, "ana")
    redis = soul.spark.client  # type: ignore[attr-defined]
    assert [k async for k in redis.scan_iter(match=f"kgents:{env.settings.spark_prefix}:soul:kent:*")]

    await forget(env, soul, "kent", purge)

    left = await rows_of(env, "kent")
    assert left == {**dict.fromkeys(left, 0), "garden_audit": left["garden_audit"]}
    assert (left["garden_audit"] == 0) is purge, "the audit rows go only with --purge-history"
    assert await tombstones(env, ids) == 0
    assert await persona_tombstones(env) == [("kent", 3, purge)]
    collection = (await env.current_state()).active.collection
    assert all(owner != "kent" for owner, _v in (await env.index.versions(collection)).values())
    assert [k async for k in redis.scan_iter(match=f"kgents:{env.settings.spark_prefix}:*:kent:*")] == []
    assert await soul.spark.get("kent", "kent") is None, "a cache read finds nothing"
    report = await env.coherency()
    assert report.coherent and report.missing == 0 and report.orphaned == 0
    assert await searches(env, "kent") == [[], [], []]
    assert await rows_of(env, "ana") == ana, "another persona is untouched"


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

"""One suite, both anchors: every garden behaviour on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from kgents.config import Settings
from kgents.errors import ConflictError, LifecycleError, NotFoundError, ValidationError
from kgents.garden.dream_ledger import Decayed, DecayRule
from kgents.garden.filters import EntryFilter
from kgents.garden.model import MAX_EVIDENCE_ITEMS, EntryType, GardenEntry, Lifecycle
from kgents.garden.records import GardenQuery, Operation, OrderBy, page_key
from kgents.garden.service import PersonaGarden
from kgents.garden.store import GardenStore, open_store
from tests.helpers import kgents_env


def run_python(settings: Settings, code: str, timeout: float = 60) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=kgents_env(settings),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_round_trip_of_every_field(garden: PersonaGarden) -> None:
    planted_at = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    original = GardenEntry(
        persona="kent",
        content="Prefers tables to prose — ünïcode ✓ and 'quotes' \"too\"",
        entry_type=EntryType.VALUE,
        lifecycle=Lifecycle.TREE,
        confidence=0.8125,
        planted_at=planted_at,
        last_nurtured=planted_at + timedelta(days=2, microseconds=7),
        eigenvector_affinities={"aesthetic": 0.15, "categorical": 0.92},
        evidence=("asked for a table", "line two\nwith a newline"),
        tags=("style", "docs:format"),
    )
    await garden.plant_many([original])
    assert await garden.get(original.id) == original
    assert (await garden.resolve(str(original.id)[:8])).id == original.id


async def test_plant_defaults_to_seed_and_rejects_compost(garden: PersonaGarden) -> None:
    e = await garden.plant("Tests talk to real databases", "value", confidence=0.7, tags=["testing"])
    assert e.lifecycle is Lifecycle.SEED
    with pytest.raises(LifecycleError):
        await garden.plant("x", "VALUE", lifecycle="COMPOST")


async def test_validation_errors_write_nothing(garden: PersonaGarden) -> None:
    for bad in ({"content": "  "}, {"entry_type": "OPINION"}, {"confidence": float("nan")}):
        with pytest.raises(ValidationError):
            await garden.plant(**({"content": "ok", "entry_type": "PATTERN"} | bad))  # type: ignore[arg-type]
    assert await garden.count() == 0
    assert await garden.store.outbox_depth() == 0


async def test_lifecycle_through_the_store(garden: PersonaGarden) -> None:
    e = await garden.plant("Deletes dead code", "BEHAVIOR")
    assert (await garden.grow(e.id)).lifecycle is Lifecycle.SAPLING
    assert (await garden.transition(e.id, "FLOWER")).lifecycle is Lifecycle.FLOWER
    with pytest.raises(LifecycleError, match="forward"):
        await garden.transition(e.id, "TREE")
    assert (await garden.compost(e.id)).lifecycle is Lifecycle.COMPOST
    with pytest.raises(LifecycleError, match="cannot be nurtured"):
        await garden.nurture(e.id)
    with pytest.raises(LifecycleError):
        await garden.grow(e.id)
    revived = await garden.revive(e.id)
    assert revived.lifecycle is Lifecycle.SEED
    assert revived.version == 5


async def test_nurture_adds_evidence_moves_confidence_and_promotes(garden: PersonaGarden) -> None:
    e = await garden.plant("I prefer minimal code", "PREFERENCE", confidence=0.38)
    n1 = await garden.nurture(e.id, evidence="shrank a helper")
    assert n1.confidence == pytest.approx(0.43)
    assert n1.lifecycle is Lifecycle.SAPLING
    assert n1.evidence == ("shrank a helper",)
    assert n1.nurtured_at > e.nurtured_at
    assert n1.version == 2
    n2 = await garden.nurture(e.id, confidence=0.95)
    assert n2.lifecycle is Lifecycle.FLOWER
    with pytest.raises(ValidationError, match=r"nurture only strengthens.*reassess"):
        await garden.nurture(e.id, confidence_delta=-0.5)
    n3 = await garden.nurture(e.id, confidence=0.45)
    assert n3.confidence == pytest.approx(0.45)
    assert n3.lifecycle is Lifecycle.FLOWER, "nurture never demotes"
    top = await garden.nurture(e.id, confidence_delta=1.0)
    assert top.confidence == 1.0
    with pytest.raises(ValidationError):
        await garden.nurture(e.id, confidence=0.5, confidence_delta=0.1)
    with pytest.raises(ValidationError):
        await garden.nurture(e.id, evidence="")


async def test_evidence_beyond_the_cap_rolls_off_but_the_audit_keeps_it(garden: PersonaGarden) -> None:
    e = await garden.plant("Reads the diff twice", "BEHAVIOR", evidence=[f"e{i}" for i in range(MAX_EVIDENCE_ITEMS)])
    after = await garden.nurture(e.id, evidence="newest")
    assert len(after.evidence) == MAX_EVIDENCE_ITEMS
    assert after.evidence[-1] == "newest" and after.evidence[0] == "e1"
    history = await garden.history(e.id)
    assert history[-1].old is not None and history[-1].old["evidence"][0] == "e0"


async def test_query_filters_order_and_count(garden: PersonaGarden) -> None:
    specs = [
        ("Minimal code", "PREFERENCE", 0.9, ("style", "code"), "FLOWER"),
        ("Small modules", "PATTERN", 0.75, ("style",), "TREE"),
        ("Real databases in tests", "VALUE", 0.72, ("testing",), "TREE"),
        ("Asks for figures", "PATTERN", 0.3, ("rigor", "code"), "SEED"),
        ("Old habit", "BEHAVIOR", 0.2, ("style",), "SAPLING"),
    ]
    entries = [garden.new_entry(c, t, confidence=conf, tags=tags, lifecycle=stage) for c, t, conf, tags, stage in specs]
    await garden.plant_many(entries)
    await garden.compost(entries[4].id)

    def contents(found: list[GardenEntry]) -> list[str]:
        return [e.content for e in found]

    assert contents(await garden.query()) == [s[0] for s in specs]
    assert contents(await garden.query(None, GardenQuery(descending=False, limit=2))) == [
        "Old habit",
        "Asks for figures",
    ]
    assert contents(await garden.query(None, GardenQuery(offset=3))) == ["Asks for figures", "Old habit"]
    assert contents(await garden.query(EntryFilter(tags=("style",), include_compost=True))) == [
        "Minimal code",
        "Small modules",
        "Old habit",
    ]
    assert contents(await garden.query(EntryFilter(tags=("style", "code"), include_compost=True))) == ["Minimal code"]
    assert contents(await garden.query(EntryFilter(lifecycles=(Lifecycle.TREE,)))) == [
        "Small modules",
        "Real databases in tests",
    ]
    assert contents(await garden.query(EntryFilter(entry_types=(EntryType.PATTERN,), include_compost=True))) == [
        "Small modules",
        "Asks for figures",
    ]
    assert contents(await garden.query(EntryFilter(min_confidence=0.72, include_compost=True))) == [
        s[0] for s in specs[:3]
    ]
    assert contents(await garden.query(EntryFilter(text="MODULES", include_compost=True))) == ["Small modules"]
    assert contents(await garden.query(EntryFilter(text="%", include_compost=True))) == []
    assert (
        contents(await garden.query(None, GardenQuery(order_by=OrderBy.CONTENT, descending=False)))[0]
        == "Asks for figures"
    )
    assert contents(await garden.query(EntryFilter(lifecycles=(Lifecycle.COMPOST,)))) == ["Old habit"]
    assert contents(await garden.find_trees(min_confidence=0.74)) == ["Small modules"]
    assert await garden.count() == 5
    assert await garden.count(EntryFilter(tags=("code",), include_compost=True)) == 2


async def test_pages_by_key_give_the_whole_order_once(garden: PersonaGarden) -> None:
    """Keyset paging (`after`) walks every order, both ways, through ties: the pages joined are the whole list."""
    day = datetime(2025, 1, 1, tzinfo=UTC)
    entries = [
        garden.new_entry(f"note {i % 4}", "INSIGHT", confidence=(i % 3) / 4, observed_at=day + timedelta(hours=i % 2))
        for i in range(9)
    ]
    await garden.plant_many(entries)
    for order in OrderBy:
        for descending in (True, False):
            whole = await garden.query(None, GardenQuery(order_by=order, descending=descending))
            paged: list[GardenEntry] = []
            after = None
            while True:
                page = GardenQuery(order_by=order, descending=descending, limit=2, after=after)
                found = await garden.query(None, page)
                paged += found
                if len(found) < 2:
                    break
                after = page_key(found[-1], order)
            assert [e.id for e in paged] == [e.id for e in whole], (order, descending)
    with pytest.raises(ValidationError, match="not both"):
        GardenQuery(offset=2, after=page_key(entries[0], OrderBy.PLANTED))


async def test_outbox_records_insert_update_delete_in_commit_order(garden: PersonaGarden) -> None:
    e = await garden.plant("Outbox me", "INSIGHT")
    await garden.nurture(e.id)
    await garden.delete(e.id)
    await PersonaGarden(garden.store, "ada").plant("Ada's own memory", "INSIGHT")
    events = await garden.store.outbox_peek("kent")  # within one persona: never ada's events
    assert [(ev.operation, ev.entry_version) for ev in events] == [
        (Operation.INSERT, 1),
        (Operation.UPDATE, 2),
        (Operation.DELETE, 2),
    ]
    assert all(ev.entry_id == e.id and ev.persona == "kent" for ev in events)
    assert [ev.seq for ev in events] == sorted(ev.seq for ev in events)
    assert events[0].created_at <= events[1].created_at <= events[2].created_at


async def test_rolled_back_batch_leaves_no_entry_and_no_outbox_row(garden: PersonaGarden) -> None:
    existing = await garden.plant("Already here", "PATTERN")
    depth = await garden.store.outbox_depth()
    batch = [garden.new_entry(f"new {i}", "PATTERN") for i in range(100)]
    batch.append(garden.new_entry("clashes", "PATTERN", entry_id=existing.id))
    with pytest.raises(ConflictError, match="nothing planted"):
        await garden.plant_many(batch)
    assert await garden.count() == 1
    assert await garden.store.outbox_depth() == depth
    with pytest.raises(ConflictError):
        await garden.plant_many([garden.new_entry("one", "PATTERN", entry_id=existing.id)])
    assert await garden.store.outbox_depth() == depth


async def test_plant_many_rejects_foreign_and_repeated_entries(garden: PersonaGarden) -> None:
    other = PersonaGarden(garden.store, "someone_else")
    with pytest.raises(ValidationError, match="belongs to persona 'someone_else'"):
        await garden.plant_many([other.new_entry("not yours", "VALUE")])
    twin = garden.new_entry("twice", "VALUE")
    with pytest.raises(ValidationError, match="repeats the id"):
        await garden.plant_many([twin, twin])
    assert await garden.count() == 0


async def test_audit_history_shows_every_change(garden: PersonaGarden) -> None:
    e = await garden.plant("Audited", "VALUE", confidence=0.5)
    await garden.nurture(e.id, evidence="first", confidence_delta=0.25)
    await garden.update(e.id, tags=["audit"])
    await garden.delete(e.id)
    history = await garden.history(e.id)
    assert [r.operation for r in history] == [Operation.INSERT, Operation.UPDATE, Operation.UPDATE, Operation.DELETE]
    assert [r.version for r in history] == [1, 2, 3, 3]
    assert history[0].old is None and history[0].new is not None
    assert set(history[1].changed_fields()) == {"confidence", "evidence", "last_nurtured", "lifecycle", "version"}
    assert history[1].old is not None and history[1].new is not None
    assert history[1].old["confidence"] == 0.5 and history[1].new["confidence"] == 0.75
    assert history[2].changed_fields() == ["tags", "version"]
    assert history[3].new is None and history[3].old is not None and history[3].old["tags"] == ["audit"]
    with pytest.raises(NotFoundError):
        await garden.get(e.id)
    with pytest.raises(NotFoundError):
        await garden.history(uuid.uuid4())


async def test_personas_are_isolated(store: GardenStore) -> None:
    kent, ada = PersonaGarden(store, "kent"), PersonaGarden(store, "ada")
    mine = await kent.plant("Kent's secret", "VALUE", tags=["private"])
    await ada.plant("Ada's own", "VALUE", tags=["private"])
    assert [e.content for e in await ada.query(EntryFilter(tags=("private",), include_compost=True))] == ["Ada's own"]
    assert await ada.count() == 1
    for attempt in (
        ada.get(mine.id),
        ada.nurture(mine.id),
        ada.compost(mine.id),
        ada.delete(mine.id),
        ada.history(mine.id),
        ada.resolve(str(mine.id)[:8]),
    ):
        with pytest.raises(NotFoundError):
            await attempt
    assert await store.replace(mine.evolve(content="hijacked", persona="ada"), mine.version) is False
    assert (await kent.get(mine.id)).content == "Kent's secret"
    assert await store.personas() == {"ada": 1, "kent": 1}


async def test_update_cannot_touch_lifecycle_or_identity(garden: PersonaGarden) -> None:
    e = await garden.plant("Identity", "VALUE")
    with pytest.raises(ValidationError, match="cannot update lifecycle"):
        await garden.update(e.id, lifecycle="FLOWER")
    changed = await garden.update(e.id, content="Identity, reworded", type="INSIGHT")
    assert changed.entry_type is EntryType.INSIGHT and changed.version == 2


async def test_stale_replace_is_refused(garden: PersonaGarden) -> None:
    e = await garden.plant("Race", "PATTERN")
    assert await garden.store.replace(e.evolve(confidence=0.9), expected_version=1)
    assert not await garden.store.replace(e.evolve(confidence=0.1), expected_version=1)
    assert (await garden.get(e.id)).confidence == 0.9


async def test_concurrent_nurture_from_two_connections_loses_nothing(anchor_settings: Settings) -> None:
    first, second = await open_store(anchor_settings), await open_store(anchor_settings)
    try:
        a, b = PersonaGarden(first, "kent"), PersonaGarden(second, "kent")
        e = await a.plant("Contended", "PATTERN", confidence=0.0)
        rounds = 25

        async def nurture_all(g: PersonaGarden, name: str) -> None:
            for i in range(rounds):
                await g.nurture(e.id, evidence=f"{name}{i}", confidence_delta=0.01)

        await asyncio.gather(nurture_all(a, "a"), nurture_all(b, "b"))
        final = await a.get(e.id)
        assert final.version == 1 + 2 * rounds
        assert sorted(final.evidence) == sorted([f"a{i}" for i in range(rounds)] + [f"b{i}" for i in range(rounds)])
        assert final.confidence == pytest.approx(0.5)
    finally:
        await first.close()
        await second.close()


NURTURE_SCRIPT = """
import asyncio, sys, uuid
from kgents.config import Settings
from kgents.garden.service import PersonaGarden
from kgents.garden.store import open_store

async def main():
    store = await open_store(Settings.from_env())
    garden = PersonaGarden(store, "kent")
    for i in range({rounds}):
        await garden.nurture(uuid.UUID("{entry_id}"), evidence=f"{name}{{i}}", confidence_delta=0.01)
    await store.close()

asyncio.run(main())
"""


@pytest.mark.slow
async def test_concurrent_nurture_from_two_processes_loses_nothing(
    garden: PersonaGarden, anchor_settings: Settings
) -> None:
    e = await garden.plant("Contended across processes", "PATTERN", confidence=0.0)
    rounds = 20
    env = kgents_env(anchor_settings)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            NURTURE_SCRIPT.format(rounds=rounds, entry_id=e.id, name=name),
            env=env,
            stderr=asyncio.subprocess.PIPE,
        )
        for name in ("p", "q")
    ]
    for proc in procs:
        _, err = await asyncio.wait_for(proc.communicate(), timeout=120)
        assert proc.returncode == 0, err.decode()
    final = await garden.get(e.id)
    assert final.version == 1 + 2 * rounds
    assert len(set(final.evidence)) == 2 * rounds


@pytest.mark.slow
def test_entries_persist_across_process_restart(anchor_settings: Settings) -> None:
    written = run_python(
        anchor_settings,
        """
        import asyncio, json
        from kgents.config import Settings
        from kgents.garden.service import PersonaGarden
        from kgents.garden.store import open_store

        async def main():
            store = await open_store(Settings.from_env())
            garden = PersonaGarden(store, "kent")
            entry = await garden.plant("Survives restarts", "VALUE", tags=["durable"], confidence=0.66)
            entry = await garden.nurture(entry.id, evidence="written by process one")
            print(json.dumps(entry.to_dict()))
            await store.close()

        asyncio.run(main())
        """,
    )
    read = run_python(
        anchor_settings,
        f"""
        import asyncio, json
        from kgents.config import Settings
        from kgents.garden.service import PersonaGarden
        from kgents.garden.store import open_store

        async def main():
            store = await open_store(Settings.from_env())
            entry = await PersonaGarden(store, "kent").get("{json.loads(written)["id"]}")
            print(json.dumps(entry.to_dict()))
            await store.close()

        asyncio.run(main())
        """,
    )
    assert json.loads(read) == json.loads(written)


@pytest.mark.slow
async def test_plant_many_ten_thousand(garden: PersonaGarden) -> None:
    entries = [
        garden.new_entry(f"pattern number {i}", EntryType.PATTERN, confidence=(i % 100) / 100, tags=[f"t{i % 7}"])
        for i in range(10_000)
    ]
    await garden.plant_many(entries)
    assert await garden.count() == 10_000
    assert await garden.store.outbox_depth() == 10_000
    assert await garden.count(EntryFilter(tags=("t3",))) == len([i for i in range(10_000) if i % 7 == 3])
    sample = entries[4321]
    assert await garden.get(sample.id) == sample


async def test_get_many_is_one_persona_only(store: GardenStore) -> None:
    kent, ada = PersonaGarden(store, "kent"), PersonaGarden(store, "ada")
    mine = [await kent.plant(f"kent {i}", "VALUE") for i in range(3)]
    theirs = await ada.plant("ada's", "VALUE")
    asked = [e.id for e in mine] + [theirs.id, uuid.uuid4()]
    found = await store.get_many("kent", asked)
    assert found == {e.id: e for e in mine}
    assert await store.get_many("kent", []) == {}


@pytest.mark.parametrize("batch", [1, 3, 80], ids=["plant", "plant_many", "plant_many_copy"])
async def test_a_replanted_id_continues_the_deleted_entrys_version(garden: PersonaGarden, batch: int) -> None:
    old = [await garden.plant(f"old text {i}", "VALUE") for i in range(batch)]
    for e in old:
        for _ in range(4):
            await garden.nurture(e.id)  # version 5
        await garden.delete(e.id)
    again = [garden.new_entry(f"new text {i}", "VALUE", entry_id=e.id) for i, e in enumerate(old)]
    stored = (
        [await garden.plant(again[0].content, "VALUE", entry_id=old[0].id)]
        if batch == 1
        else (await garden.plant_many(again))
    )
    assert [e.version for e in stored] == [6] * batch, "the version goes on from the deleted row's 5"
    assert [(await garden.get(e.id)).version for e in stored] == [6] * batch
    assert stored == [await garden.get(e.id) for e in stored], "the store returns what it wrote"
    nurtured = await garden.nurture(stored[0].id)
    assert nurtured.version == 7
    await garden.delete(nurtured.id)
    assert (await garden.plant("third life", "VALUE", entry_id=nurtured.id)).version == 8
    events = [ev for ev in await garden.store.outbox_peek(garden.persona, 10_000) if ev.entry_id == old[0].id]
    assert [ev.entry_version for ev in events] == [1, 2, 3, 4, 5, 5, 6, 7, 7, 8], "the outbox never goes back"


async def test_the_anchor_refuses_a_replant_that_restarts_the_version(garden: PersonaGarden) -> None:
    e = await garden.plant("first life", "VALUE")
    await garden.nurture(e.id)
    await garden.delete(e.id)
    store = garden.store
    sql = "INSERT INTO persona_garden (id, persona, content, entry_type, lifecycle, confidence, planted_at,"
    if store.backend == "postgres":
        pool = store.anchor.pool  # type: ignore[attr-defined]
        with pytest.raises(Exception, match="continue its old version"):
            await pool.execute(
                sql + " last_nurtured) VALUES ($1, 'kent', 'x', 'VALUE', 'SEED', 0.5, now(), now())", e.id
            )
    else:
        db = store.anchor  # type: ignore[attr-defined]

        def work() -> None:
            with db.write() as conn:
                values = " last_nurtured) VALUES (?, 'kent', 'x', 'VALUE', 'SEED', 0.5, '', '')"
                conn.execute(sql + values, (str(e.id),))

        with pytest.raises(Exception, match="continue its old version"):
            await db.run(work)
    assert await garden.count() == 0


# -- the dream's ledger (store.dream_ledger()): what changed since the last dream, the bulk decay, the lease ----------
DECAY_RULE = DecayRule(stale_days=30, per_day=0.01, floor=0.1)


async def test_the_dream_sees_what_changed_and_settles_at_the_version_it_saw(garden: PersonaGarden) -> None:
    ledger = garden.store.dream_ledger()
    a = await garden.plant("I prefer minimal code", "PREFERENCE")
    b = await garden.plant("I value quiet mornings", "VALUE")
    pending = {p.entry.id: p.version for p in await ledger.pending("kent", 100)}
    assert pending == {a.id: 1, b.id: 1} and await ledger.pending_count("kent") == 2
    assert await ledger.pending("other", 100) == []
    assert await ledger.settle("kent", list(pending.items())) == 2
    assert await ledger.pending("kent", 100) == []
    await garden.reassess(a.id, 0.3)  # confidence and stage alone: not new to the dream
    await garden.transition(b.id, Lifecycle.TREE)
    assert await ledger.pending("kent", 100) == []
    nurtured = await garden.nurture(a.id, evidence="deleted a wrapper")
    seen = await ledger.pending("kent", 100)
    assert [(p.entry, p.version) for p in seen] == [(nurtured, nurtured.version)]
    again = await garden.update(a.id, tags=["style"])  # changed after the dream read it: stays pending
    assert await ledger.settle("kent", [(a.id, seen[0].version)]) == 0
    assert [(p.entry.id, p.version) for p in await ledger.pending("kent", 100)] == [(a.id, again.version)]
    await garden.delete(a.id)
    assert await ledger.pending_count("kent") == 0


def _stale(garden: PersonaGarden, text: str, confidence: float, stage: Lifecycle, days: int) -> GardenEntry:
    when = datetime.now(UTC) - timedelta(days=days)
    entry = garden.new_entry(text, "VALUE", confidence=confidence, lifecycle=stage)
    return replace(entry, planted_at=when, last_nurtured=when)


async def test_decay_is_one_statement_that_follows_confidence_down_and_counts_each_day_once(
    garden: PersonaGarden,
) -> None:
    ledger, today = garden.store.dream_ledger(), datetime.now(UTC).date()
    tree = _stale(garden, "a tree", 0.72, Lifecycle.TREE, 40)  # stale for 10 days: 0.62, a SAPLING
    weak = _stale(garden, "a weak seed", 0.15, Lifecycle.SEED, 40)  # 0.05: COMPOST
    flower = _stale(garden, "a flower", 0.95, Lifecycle.FLOWER, 33)  # 3 days: 0.92, still a FLOWER
    seed = _stale(garden, "a confident seed", 0.8, Lifecycle.SEED, 40)  # 0.70 earns TREE, but decay never promotes
    fresh = _stale(garden, "nurtured yesterday", 0.5, Lifecycle.SAPLING, 1)
    gone = _stale(garden, "already compost", 0.5, Lifecycle.SAPLING, 40)
    other = replace(_stale(garden, "another persona's", 0.5, Lifecycle.SAPLING, 40), persona="anna")
    await garden.plant_many([tree, weak, flower, seed, fresh, gone])
    await PersonaGarden(garden.store, "anna").plant_many([other])
    await garden.transition(gone.id, Lifecycle.COMPOST)
    before = await garden.store.outbox_depth()
    pending = {p.entry.id: p.version for p in await ledger.pending("kent", 100)}

    would = await ledger.decay("kent", today, DECAY_RULE, dry_run=True)
    assert (would.count, would.composted) == (4, (weak.id,)) and await garden.store.outbox_depth() == before
    done = await ledger.decay("kent", today, DECAY_RULE)
    assert set(done.ids) == {tree.id, weak.id, flower.id, seed.id} and done.composted == (weak.id,)
    after = {e.id: e for e in await garden.query()}
    assert (after[tree.id].confidence, after[tree.id].lifecycle) == (pytest.approx(0.62), Lifecycle.SAPLING)
    assert (after[weak.id].confidence, after[weak.id].lifecycle) == (pytest.approx(0.05), Lifecycle.COMPOST)
    assert (after[flower.id].confidence, after[flower.id].lifecycle) == (pytest.approx(0.92), Lifecycle.FLOWER)
    assert (after[seed.id].confidence, after[seed.id].lifecycle) == (pytest.approx(0.7), Lifecycle.SEED)
    assert all(after[e.id].version == 2 for e in (tree, weak, flower, seed)) and after[fresh.id].version == 1
    assert after[tree.id].last_nurtured == tree.last_nurtured and after[tree.id].evidence == tree.evidence
    assert (await PersonaGarden(garden.store, "anna").get(other.id)).version == 1
    assert await garden.store.outbox_depth() == before + 4  # every change captured, as any write is
    assert {p.entry.id: p.version for p in await ledger.pending("kent", 100)} == pending  # a decay is not news
    assert (await ledger.state("kent")).decayed_through == today

    assert await ledger.decay("kent", today, DECAY_RULE) == Decayed()  # the same day again: nothing written
    assert {e.id: e.version for e in await garden.query()} == {i: e.version for i, e in after.items()}
    tomorrow = await ledger.decay("kent", today + timedelta(days=1), DECAY_RULE)
    assert set(tomorrow.ids) == {tree.id, flower.id, seed.id}  # one more day each; COMPOST is left alone
    assert (await garden.get(tree.id)).confidence == pytest.approx(0.61)


async def test_one_dream_of_a_persona_holds_the_lease(garden: PersonaGarden) -> None:
    ledger = garden.store.dream_ledger()
    assert await ledger.claim("kent", "one", 60) and not await ledger.claim("kent", "two", 60)
    assert await ledger.claim("anna", "two", 60)  # another persona dreams at the same time
    await ledger.finish("kent", "one", datetime.now(UTC))
    state = await ledger.state("kent")
    assert state.dreams == 1 and state.dreamt_at is not None
    assert await ledger.claim("kent", "two", 0.001)
    await asyncio.sleep(0.01)
    assert await ledger.claim("kent", "three", 60)  # a lease that ran out is taken over
    await ledger.finish("kent", "two", None)  # not the holder any more: changes nothing
    assert not await ledger.claim("kent", "four", 60) and (await ledger.state("kent")).dreams == 1

"""Issue 7.3: the anchor knows which vector index it feeds. A second KGENTS_HOME over the same PostgreSQL schema
(its own embedded index) refuses to relay or search instead of draining the other index's events; on SQLite each
home is its own anchor, so both simply work."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import pytest

from kgents.config import Settings
from kgents.errors import IndexMismatchError
from kgents.garden.service import PersonaGarden
from kgents.synapse.runtime import Synapse, open_synapse
from tests.helpers import CliHarness


async def _plant(synapse: Synapse, *texts: str) -> None:
    garden = PersonaGarden(synapse.store, "kent")
    await garden.plant_many([garden.new_entry(t, "PREFERENCE") for t in texts])


def test_a_second_home_never_drains_the_first_homes_outbox(
    anchor_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = anchor_settings.with_persona("kent")
    second = replace(first, home=tmp_path / "second-home")

    async def first_home_indexes() -> None:
        synapse = await open_synapse(first)
        try:
            await _plant(synapse, "I prefer minimal code", "tests talk to real databases")
            assert (await synapse.catch_up(timeout_s=30)).pending == 0
            await _plant(synapse, "pasta wants fresh basil")  # left in the outbox for the first home's relay
        finally:
            await synapse.close()

    async def second_home_opens() -> str | None:
        try:
            synapse = await open_synapse(second)
        except IndexMismatchError as exc:
            return str(exc)
        try:  # SQLite: a home of its own, its own anchor and index
            assert synapse.state.identity is not None
            assert str(second.home) in synapse.state.identity.location
            await _plant(synapse, "a memory of the second home")
            assert (await synapse.catch_up(timeout_s=30)).pending == 0
            assert (await synapse.coherency()).coherency_with_truth == 1.0
        finally:
            await synapse.close()
        return None

    async def first_home_carries_on() -> None:
        synapse = await open_synapse(first)
        try:
            assert await synapse.store.outbox_depth() == 1, "nobody took the first home's pending event"
            assert (await synapse.catch_up(timeout_s=30)).pending == 0
            report = await synapse.coherency()
            assert report.coherency_with_truth == 1.0 and report.matched == 3
        finally:
            await synapse.close()

    asyncio.run(first_home_indexes())
    refused = asyncio.run(second_home_opens())
    if first.postgres_url:
        assert refused is not None
        assert str(first.home / "index") in refused and str(second.home / "index") in refused
    else:
        assert refused is None

    if first.postgres_url:  # the CLI: one plain line, exit 78, for a relay, a reconcile and a search alike
        cli = CliHarness(second, capsys, monkeypatch)
        for args in (("synapse", "run", "--once"), ("synapse", "reconcile"), ("garden", "search", "code")):
            code, _, err = cli(*args)
            assert code == 78, err
            assert len(err.strip().splitlines()) == 1 and "refusing" in err, err

    asyncio.run(first_home_carries_on())


def test_an_anchor_from_before_index_identities_is_claimed_by_the_first_index(anchor_settings: Settings) -> None:
    settings = anchor_settings.with_persona("kent")

    async def scenario() -> None:
        synapse = await open_synapse(settings)
        try:
            identity = synapse.state.identity
            assert identity is not None
            assert await synapse.index.index_id(synapse.state.active.collection) == identity.id
        finally:
            await synapse.close()
        await _forget_identity(settings)
        synapse = await open_synapse(settings)  # the same index claims it again (its stamp is kept)
        try:
            assert synapse.state.identity is not None and synapse.state.identity.id == identity.id
        finally:
            await synapse.close()

    asyncio.run(scenario())


async def _forget_identity(settings: Settings) -> None:
    """The anchor as an older kgents left it: a Synapse state with no index identity."""
    from kgents.garden.postgres_store import PostgresGardenStore
    from kgents.garden.sqlite_store import SqliteGardenStore
    from kgents.garden.store import open_store

    store = await open_store(settings)
    try:
        sql = "UPDATE synapse_state SET index_id = NULL, index_location = NULL"
        if isinstance(store, PostgresGardenStore):
            await store.anchor.pool.execute(sql)
        elif isinstance(store, SqliteGardenStore):

            def work() -> None:
                with store.anchor.write() as conn:
                    conn.execute(sql)

            await store.anchor.run(work)
    finally:
        await store.close()


def test_adopt_moves_the_anchor_over_to_this_index(
    anchor_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = anchor_settings.with_persona("kent")
    second = replace(first, home=tmp_path / "second-home") if first.postgres_url else first

    async def index_in_first_home() -> None:
        synapse = await open_synapse(first)
        try:
            await _plant(synapse, "I prefer minimal code", "tests talk to real databases")
            assert (await synapse.catch_up(timeout_s=30)).pending == 0
        finally:
            await synapse.close()

    asyncio.run(index_in_first_home())
    cli = CliHarness(second, capsys, monkeypatch)
    code, _, err = cli("synapse", "adopt")
    assert code == 64 and "--yes" in err
    code, out, err = cli("synapse", "adopt", "--yes", "--json")
    if not first.postgres_url:  # one home, one anchor: it already feeds this index
        assert code == 65 and "already is the index this anchor feeds" in err
        return
    assert code == 0, err
    report = json.loads(out)
    assert report["copied"] == 2 and report["coherency"]["coherency_with_truth"] == 1.0
    assert str(second.home / "index") in report["index"]["location"]
    hits = cli.json("garden", "search", "minimal code")
    assert isinstance(hits, dict) and hits["hits"][0]["content"] == "I prefer minimal code"
    first_cli = CliHarness(first, capsys, monkeypatch)  # the index the anchor fed before now refuses
    code, _, err = first_cli("garden", "search", "minimal code")
    assert code == 78 and str(second.home / "index") in err, err


def test_a_lost_index_folder_says_how_to_rebuild_it(
    anchor_settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    settings = anchor_settings.with_persona("kent")

    async def index_it() -> None:
        synapse = await open_synapse(settings)
        try:
            await _plant(synapse, "I prefer minimal code")
            assert (await synapse.catch_up(timeout_s=30)).pending == 0
        finally:
            await synapse.close()

    asyncio.run(index_it())
    shutil.rmtree(settings.home / "index")
    cli = CliHarness(settings, capsys, monkeypatch)
    code, _, err = cli("garden", "search", "minimal code")
    assert code == 66 and "is missing" in err and "kgents synapse reconcile" in err, err
    code, _, err = cli("synapse", "reconcile")
    assert code == 0, err
    hits = cli.json("garden", "search", "minimal code")
    assert isinstance(hits, dict) and hits["hits"][0]["content"] == "I prefer minimal code"

"""`kgents synapse …` and `kgents garden search` through the real entry point, and a relay process killed with
SIGKILL mid-stream then restarted: nothing lost, no orphan or stale point, coherency back to 1.0."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kgents.config import Settings
from kgents.garden.records import GardenQuery
from kgents.garden.service import PersonaGarden
from kgents.garden.store import open_store
from kgents.synapse.queue import queue_on
from kgents.synapse.runtime import open_synapse
from tests.helpers import CliHarness as Cli
from tests.helpers import kgents_env as _env
from tests.helpers import wait_until


@pytest.fixture
def cli(anchor_settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(anchor_settings, capsys, monkeypatch)


def test_search_status_reconcile_reindex(cli: Cli) -> None:
    for text in ("I prefer minimal code", "the weather is sunny today", "my cat sleeps all afternoon"):
        code, _, err = cli("garden", "plant", text)
        assert code == 0, err
    code, out, err = cli("synapse", "run", "--once")
    assert code == 0, err
    code, out, err = cli("garden", "search", "keep code small and simple", "--json")
    assert code == 0, err
    hits = json.loads(out)["hits"]
    assert hits[0]["content"] == "I prefer minimal code" and hits[0]["explain"]["dense_rank"] == 1
    code, out, err = cli("garden", "search", "keep code small and simple", "--mode", "dense", "--json")
    assert code == 0, err
    hits = json.loads(out)["hits"]
    assert hits[0]["content"] == "I prefer minimal code" and hits[0]["score"] > 0.3, "a cosine"
    code, out, _ = cli("garden", "search", "keep code small and simple", "--type", "insight")
    assert code == 0 and "minimal code" not in out
    code, out, err = cli("synapse", "status", "--json")
    status = json.loads(out)
    assert code == 0, err
    assert status["status"] == "OK" and status["coherency"]["coherency_with_truth"] == 1.0
    assert status["metrics"]["queue_depth"] == 0
    code, out, _ = cli("synapse", "status")
    assert code == 0 and "coherency  1.0000" in out
    code, out, err = cli("synapse", "reconcile", "--json")
    assert code == 0, err
    assert json.loads(out)["after"]["coherency_with_truth"] == 1.0
    code, out, err = cli("synapse", "reindex", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["copied"] == 3 and report["coherency"]["coherency_with_truth"] == 1.0
    code, out, _ = cli("garden", "search", "keep code small and simple", "--json")
    assert json.loads(out)["hits"][0]["content"] == "I prefer minimal code"


def test_errors_are_one_line(cli: Cli) -> None:
    code, _, err = cli("synapse", "reindex", "--embedder", "no-such-model")
    assert code != 0 and len(err.strip().splitlines()) == 1 and "no-such-model" in err
    code, _, err = cli("garden", "search", "  ")
    assert code == 65 and len(err.strip().splitlines()) == 1


def test_an_unknown_embedder_gets_advice_that_works(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never "run reindex --embedder nope": that command fails too. And the flag's value is not blamed on the
    variable."""
    assert cli("garden", "plant", "hello there")[0] == 0
    code, _, err = cli("synapse", "reindex", "--embedder", "nope")
    assert code == 78 and "KGENTS_EMBEDDER='nope'" not in err and "'nope'" in err
    monkeypatch.setenv("KGENTS_EMBEDDER", "nope")
    code, _, err = cli("garden", "search", "hello")
    assert code == 78 and "reindex --embedder nope" not in err and "not a known embedder" in err


def test_search_labels_scores_explains_and_leaves_compost_out(cli: Cli) -> None:
    code, out, err = cli("garden", "plant", "Met Zorblax at the harbour market", "--json")
    assert code == 0, err
    rare = json.loads(out)["id"]
    code, out, err = cli("garden", "plant", "the Velloran bread recipe", "--json")
    composted = json.loads(out)["id"]
    assert cli("garden", "compost", composted)[0] == 0
    code, out, err = cli("garden", "search", "zorblax", "--explain")
    assert code == 0, err
    header, first = out.splitlines()[:2]
    assert header.split()[:4] == ["id", "fused", "dense", "lex"], header
    assert first.startswith(rare[:8]) and first.split()[3] == "1", "lexical rank 1"
    code, out, _ = cli("garden", "search", "zorblax", "--mode", "lexical")
    assert code == 0 and out.splitlines()[0].split()[:2] == ["id", "bm25"]
    code, out, _ = cli("garden", "search", "Velloran bread recipe", "--json")
    assert code == 0 and composted not in {h["id"] for h in json.loads(out)["hits"]}
    code, out, _ = cli("garden", "search", "Velloran bread recipe", "--include-compost", "--json")
    assert code == 0 and json.loads(out)["hits"][0]["id"] == composted
    code, out, _ = cli("garden", "search", "Velloran bread recipe", "--include-compost", "--min-score", "1", "--json")
    assert code == 0 and json.loads(out)["hits"] == []
    code, _, err = cli("garden", "search", "x", "--mode", "nearest")
    assert code == 64 and len(err.strip().splitlines()) == 1 and "--mode" in err


@pytest.mark.slow
def test_relay_killed_mid_batch_then_restarted(anchor_settings: Settings) -> None:
    settings = anchor_settings.with_persona("kent")
    total = 6_000

    async def plant() -> None:
        store = await open_store(settings)
        try:
            g = PersonaGarden(store, "kent")
            await g.plant_many([g.new_entry(f"crash test memory {i}", "PATTERN") for i in range(total)])
        finally:
            await store.close()

    async def depth() -> int:
        store = await open_store(settings)
        try:
            return await store.outbox_depth()
        finally:
            await store.close()

    asyncio.run(plant())
    cmd = [str(Path(sys.executable).parent / "kgents"), "synapse", "run", "--batch-size", "16", "--lease", "1"]
    proc = subprocess.Popen(cmd, env=_env(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            left = asyncio.run(depth())
            if left < total - 200:
                break
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the relay process made no progress"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert 0 < left < total, "killed mid-stream"

    async def restart() -> None:
        synapse = await open_synapse(settings)
        try:

            async def drained() -> tuple[float, int]:
                await synapse.drain()
                return (await synapse.coherency()).coherency_with_truth, await synapse.store.outbox_depth()

            # the killed relay's last batch may be applied but still leased to it until its lease runs out
            await wait_until(drained, lambda r: r == (1.0, 0), timeout=60, what="coherency 1.0, outbox empty")
            # Points are keyed by entry id, so counting them cannot find a duplicate; what a crash could leave is an
            # orphan, a missing entry or an old version: compare the index with the truth, id by id.
            collection = synapse.state.active.collection
            truth = await PersonaGarden(synapse.store, "kent").query(None, GardenQuery(limit=total))
            assert len(truth) == total
            assert await synapse.index.versions(collection) == {e.id: ("kent", e.version) for e in truth}
            assert await synapse.index.count(collection) == total, "the count API agrees with the scroll"
            assert await synapse.queue.dead_letter_count() == 0
        finally:
            await synapse.close()

    asyncio.run(restart())


def test_sigterm_stops_the_relay_at_a_batch_boundary(anchor_settings: Settings) -> None:
    from kgents.synapse.metrics import collect_metrics

    settings = anchor_settings.with_persona("kent")

    async def relays_alive() -> int:
        store = await open_store(settings)
        try:
            return (await collect_metrics(queue_on(store.anchor))).relays_alive
        finally:
            await store.close()

    cmd = [str(Path(sys.executable).parent / "kgents"), "synapse", "run"]
    proc = subprocess.Popen(cmd, env=_env(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while asyncio.run(relays_alive()) != 1:
            assert proc.poll() is None and time.monotonic() < deadline, "the relay did not start"
            time.sleep(0.05)
        status = subprocess.run(
            [cmd[0], "synapse", "status", "--json"], env=_env(settings), capture_output=True, timeout=30
        )
        shown = json.loads(status.stdout)  # the running relay owns the embedded index: it measured for us
        assert shown["coherency"]["coherency_with_truth"] == 1.0, status.stderr.decode()
        assert "relay" in shown["coherency_note"] and shown["metrics"]["relays_alive"] == 1
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err.decode()
    assert b"synapse stopped" in out
    assert asyncio.run(relays_alive()) == 0, "a clean stop removes its heartbeat"


def test_a_cli_plant_is_searchable_when_it_returns(cli: Cli, anchor_settings: Settings) -> None:
    """`garden plant` goes through the face: its write is in the index when the command returns (nothing left in
    the outbox for a later drain), as `Memory.remember`'s is."""
    code, out, err = cli("garden", "plant", "I prefer minimal code", "--json")
    assert code == 0, err
    planted = json.loads(out)

    async def index_now() -> tuple[int, dict[str, object]]:
        synapse = await open_synapse(anchor_settings)  # opening drains nothing
        try:
            return await synapse.queue.queue_depth(10), (await synapse.coherency("kent")).to_dict()
        finally:
            await synapse.close()

    pending, report = asyncio.run(index_now())
    assert pending == 0 and (report["matched"], report["missing"]) == (1, 0), report
    code, out, _ = cli("garden", "search", "keep code small", "--json", "--wait", "0")
    assert json.loads(out)["hits"][0]["id"] == planted["id"] and json.loads(out).get("pending", 0) == 0


def test_synapse_status_drains_first_on_the_embedded_default(tmp_path: Path, cli_home: Cli) -> None:
    """Entries written straight to the anchor (no relay runs on the embedded default): `synapse status` drains them
    first, as `kgents status` does, so both say HEALTHY (it used to say CRITICAL 0.0 and exit 2)."""
    settings = Settings(home=tmp_path / "home")

    async def write_to_the_anchor_only() -> None:
        store = await open_store(settings)
        try:
            for text in ("I like tea", "I like jazz", "I walk at dawn"):
                await PersonaGarden(store, "kent").plant(text, "PREFERENCE")
        finally:
            await store.close()

    asyncio.run(write_to_the_anchor_only())
    code, out, err = cli_home("synapse", "status", "--json")
    status = json.loads(out)
    assert code == 0, err
    assert status["level"] == "HEALTHY" and status["metrics"]["queue_depth"] == 0
    assert status["coherency"]["coherency_with_truth"] == 1.0 and status["coherency"]["matched"] == 3
    code, out, _ = cli_home("status", "--json")
    assert code == 0 and json.loads(out)["level"] in ("HEALTHY", "THRIVING")


@pytest.fixture
def cli_home(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(Settings(home=tmp_path / "home"), capsys, monkeypatch)


def test_the_readmes_recipe_for_switching_embedder_works(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """`KGENTS_EMBEDDER=minilm` then `kgents synapse reindex --embedder minilm` (it used to exit 78 advising that
    same command); a plain `reindex` follows KGENTS_EMBEDDER too, and a flag that contradicts it is refused."""
    assert cli("garden", "plant", "I prefer minimal code")[0] == 0
    monkeypatch.setenv("KGENTS_EMBEDDER", "minilm")
    code, _, err = cli("garden", "search", "keep code small")
    assert code == 78 and "kgents synapse reindex --embedder minilm" in err, "the advice"
    code, _, err = cli("synapse", "reindex", "--embedder", "minilm-mpnet-static-384")
    assert code == 78 and "KGENTS_EMBEDDER is 'minilm'" in err
    code, out, err = cli("synapse", "reindex", "--embedder", "minilm", "--json")
    assert code == 0, err
    assert json.loads(out)["new"]["embedder"] == "minilm" and json.loads(out)["copied"] == 1
    code, out, err = cli("garden", "search", "keep code small", "--json")
    assert code == 0 and json.loads(out)["hits"][0]["content"] == "I prefer minimal code", err
    code, out, err = cli("synapse", "reindex", "--json")
    assert code == 0 and json.loads(out)["new"]["embedder"] == "minilm", err
    monkeypatch.delenv("KGENTS_EMBEDDER")
    code, out, _ = cli("synapse", "status", "--json")
    assert json.loads(out)["index"]["active"]["embedder"] == "minilm", "the index keeps what it was built with"

"""The CLI beside a server of its home (real processes): commands that need the index go through it, commands
that need it to themselves refuse by name, SIGTERM finishes the relay's batch in flight, and with no server a
command waits for the index's owner instead of failing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from kgents.config import Settings
from kgents.garden.service import PersonaGarden
from kgents.garden.store import open_store
from kgents.home.discovery import home_server
from kgents.synapse.runtime import open_synapse
from tests.helpers import kgents_env, wait_until, wait_until_sync
from tests.server_support import KGENTS, cli, running_server

pytestmark = pytest.mark.slow


def outbox(settings: Settings, where: str = "1 = 1") -> int:
    with sqlite3.connect(settings.sqlite_path) as conn:
        return int(conn.execute(f"SELECT count(*) FROM garden_outbox WHERE {where}").fetchone()[0])  # noqa: S608


def test_commands_go_through_the_server(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", persona="kent")
    assert cli(settings, "garden", "plant", "I prefer minimal code").returncode == 0
    with running_server(settings) as server:
        found = cli(settings, "garden", "search", "simplicity", "--json")
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout)["hits"][0]["content"] == "I prefer minimal code"
        assert "in use by" not in found.stderr
        status = cli(settings, "synapse", "status", "--json")
        assert status.returncode == 0, status.stderr
        data = json.loads(status.stdout)
        assert data["coherency"]["coherency_with_truth"] == 1.0
        assert data["coherency_note"].endswith(f"at {server.url}") and "server" in data["coherency_note"]
        repaired = cli(settings, "synapse", "reconcile", "--json")
        assert repaired.returncode == 0, repaired.stderr
        assert json.loads(repaired.stdout)["after"]["coherency_with_truth"] == 1.0
        once = cli(settings, "synapse", "run", "--once")
        assert once.returncode == 0 and f"the kgents server at {server.url} relays" in once.stdout
        refused = cli(settings, "synapse", "adopt", "--yes")  # the anchor already feeds the server's index
        assert refused.returncode == 69, refused.stderr
        assert f"(pid {server.proc.pid})" in refused.stderr and "stop the server" in refused.stderr


def test_reindex_and_forget_a_persona_through_the_server(tmp_path: Path) -> None:
    """The two that need the whole index run in the server that owns it, while it keeps serving."""
    settings = Settings(home=tmp_path / "home", persona="kent")
    assert cli(settings, "garden", "plant", "I prefer minimal code").returncode == 0
    assert cli(settings, "garden", "plant", "ada likes long walks", persona="ada").returncode == 0
    with running_server(settings):
        rebuilt = cli(settings, "synapse", "reindex", "--json")
        assert rebuilt.returncode == 0, rebuilt.stderr
        report = json.loads(rebuilt.stdout)
        assert report["copied"] == 2 and report["coherency"]["coherency_with_truth"] == 1.0
        assert report["new"]["collection"] != report["old"]["collection"]
        assert cli(settings, "garden", "plant", "planted after the reindex").returncode == 0
        found = cli(settings, "garden", "search", "minimal code", "--json")
        assert json.loads(found.stdout)["hits"][0]["content"] == "I prefer minimal code"
        forgot = cli(settings, "forget", "--persona", "ada", "--yes", "--json")
        assert forgot.returncode == 0, forgot.stderr
        assert json.loads(forgot.stdout) | {"cache_keys": 0} == {
            "persona": "ada",
            "entries": 1,
            "points": 1,
            "cache_keys": 0,
            "purged_history": False,
        }
        gone = cli(settings, "garden", "search", "long walks", "--json", persona="ada")
        assert gone.returncode == 0 and json.loads(gone.stdout)["hits"] == []
        status = cli(settings, "synapse", "status", "--json")
        assert json.loads(status.stdout)["coherency"]["coherency_with_truth"] == 1.0
        kept = cli(settings, "garden", "search", "after the reindex", "--json")
        assert json.loads(kept.stdout)["hits"][0]["content"] == "planted after the reindex"


def test_a_plant_beside_the_server_is_relayed_by_it(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", persona="kent")
    with running_server(settings):
        assert cli(settings, "garden", "plant", "tea in the morning").returncode == 0  # the anchor only
        wait_until_sync(lambda: outbox(settings), lambda n: n == 0, timeout=30, what="the server's relay")
        found = cli(settings, "garden", "search", "morning tea", "--json")
        assert json.loads(found.stdout)["hits"][0]["content"] == "tea in the morning"
        assert json.loads(found.stdout)["pending"] == 0


async def test_sigterm_finishes_the_relay_batch_in_flight(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", persona="kent")
    with running_server(settings) as server:
        store = await open_store(settings)
        try:
            garden = PersonaGarden(store, "kent")
            entries = [garden.new_entry(f"note {i} on relays and gardens", "INSIGHT") for i in range(3000)]
            await garden.plant_many(entries)
        finally:
            await store.close()

        async def left() -> int:
            return outbox(settings)

        await wait_until(left, lambda n: 0 < n < 3000, timeout=60, interval=0.005, what="the relay under way")
        code, out, err = server.stop()
    assert code == 0, err
    assert "stopped" in out and "Traceback" not in err
    assert outbox(settings, "claimed_by IS NOT NULL") == 0  # no batch abandoned mid-way: no claim left behind
    drained = cli(settings, "synapse", "run", "--once")
    assert drained.returncode == 0, drained.stderr
    synapse = await open_synapse(settings)
    try:
        assert (await synapse.coherency()).coherency_with_truth == 1.0
    finally:
        await synapse.close()


async def test_a_command_waits_for_the_owner_of_the_index(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", persona="kent")
    assert cli(settings, "garden", "plant", "I prefer minimal code").returncode == 0
    synapse = await open_synapse(settings)  # this process owns the embedded index for now
    search = await asyncio.create_subprocess_exec(
        str(KGENTS),
        "garden",
        "search",
        "simplicity",
        "--json",
        env=kgents_env(settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert search.stderr is not None
        told = (await asyncio.wait_for(search.stderr.readline(), 60)).decode()  # it says it waits (or ends)
        assert "waiting up to 60 s for the embedded index" in told and f"pid {os.getpid()}" in told
        assert search.returncode is None
    finally:
        await synapse.close()
    out, err = await asyncio.wait_for(search.communicate(), 60)
    assert search.returncode == 0, err
    assert json.loads(out)["hits"][0]["content"] == "I prefer minimal code"


def test_two_servers_started_at_once_one_serves_the_other_names_it(tmp_path: Path) -> None:
    """The second of two `kgents serve` started at the same moment names the first (also while the first still
    starts and holds the index before it announces itself), and both agree on the token."""
    settings = Settings(home=tmp_path / "home", persona="kent")
    procs = [
        subprocess.Popen(
            [str(KGENTS), "serve", "--port", "0"],
            env=kgents_env(settings),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        refused = wait_until_sync(
            lambda: [p for p in procs if p.poll() is not None], lambda done: bool(done), timeout=90, what="one exit"
        )[0]
        serving = next(p for p in procs if p is not refused)
        err = refused.communicate(timeout=30)[1]
        assert refused.returncode == 69, err
        info = home_server(settings)
        assert info is not None and info.pid == serving.pid
        assert f"a kgents server already serves KGENTS_HOME {settings.home} at {info.url} (pid {serving.pid})" in err
        found = cli(settings, "garden", "search", "anything", "--json")  # the token in the file is the server's
        assert found.returncode == 0, found.stderr
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.communicate(timeout=30)


@pytest.mark.parametrize(
    "path", ["world.database.index.search", "world.database.index.count", "world.database.index.status"]
)
def test_agentese_index_paths_go_through_the_server(tmp_path: Path, path: str) -> None:
    settings = Settings(home=tmp_path / "home", persona="kent")
    assert cli(settings, "garden", "plant", "I prefer minimal code").returncode == 0
    with running_server(settings) as server:
        wait_until_sync(lambda: outbox(settings), lambda n: n == 0, timeout=30, what="the server's relay")
        done = cli(settings, "invoke", path, "minimal", "code", "--json")
        assert done.returncode == 0, done.stderr
        assert "in use by" not in done.stderr and "waiting" not in done.stderr
        answer = json.loads(done.stdout)
        if path.endswith("search"):
            assert [h["content"] for h in answer["hits"]] == ["I prefer minimal code"]
        else:
            assert answer["points"] == 1 and answer["collection"].startswith("garden_")
        assert server.proc.poll() is None

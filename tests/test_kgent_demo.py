"""`kgents demo` plays the whole scenario and exits 0: on the embedded default, and on PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
import json
import queue
import re
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest

from kgents.config import Settings
from tests.helpers import PG_URL, REDIS_URL, kgents_env, unique_name

KGENTS = str(Path(sys.executable).with_name("kgents"))


def _demo(env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run([KGENTS, "demo", "--json"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    data: dict[str, object] = json.loads(done.stdout)
    return data


def test_demo_on_the_embedded_default(tmp_path: Path) -> None:
    home = tmp_path / "mine"
    data = _demo(kgents_env(Settings(home=home)))
    assert data["ok"] is True and len(data["steps"]) >= 10  # type: ignore[arg-type]
    assert not home.exists()  # a throwaway home: the user's own is never touched


def test_demo_refuses_a_home_that_holds_something(tmp_path: Path) -> None:
    home = tmp_path / "mine"
    home.mkdir()
    (home / "anchor.db").write_bytes(b"the user's")
    done = subprocess.run(
        [KGENTS, "demo", "--home", str(home)], env=kgents_env(Settings(home=home)), capture_output=True, text=True
    )
    assert done.returncode == 78 and "needs a new or empty home" in done.stderr and "Traceback" not in done.stderr
    assert [p.name for p in home.iterdir()] == ["anchor.db"] and (home / "anchor.db").read_bytes() == b"the user's"


def test_demo_in_a_named_home_keeps_it(tmp_path: Path) -> None:
    home = tmp_path / "look"
    done = subprocess.run(
        [KGENTS, "demo", "--json", "--home", str(home)],
        env=kgents_env(Settings(home=tmp_path / "mine")),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["sandbox"] == {"home": str(home), "schema": None, "spark_prefix": None, "kept": True}
    assert (home / "anchor.db").exists() and not (tmp_path / "mine").exists()


def test_demo_on_postgres_and_redis(tmp_path: Path, pg_schema: str) -> None:
    env = kgents_env(Settings(home=tmp_path / "home", postgres_url=PG_URL, postgres_schema=pg_schema))
    env |= {"KGENTS_REDIS_URL": REDIS_URL, "KGENTS_SPARK_PREFIX": unique_name("kgdemo")}
    data = _demo(env)
    assert data["ok"] is True
    assert any("PostgreSQL" in str(s) for s in data["steps"])  # type: ignore[attr-defined]
    sandbox: dict[str, str] = data["sandbox"]  # type: ignore[assignment]
    assert sandbox["spark_prefix"].startswith("demo-") and sandbox["schema"].startswith("kgents_demo_")
    assert asyncio.run(_redis_keys(f"kgents:{sandbox['spark_prefix']}:*")) == []  # its keys are dropped
    assert not asyncio.run(_schema_exists(sandbox["schema"]))


def _snapshot(schema: str) -> dict[str, object]:
    """What the user's schema holds: every table's rows (ordered), so any change the demo made shows."""

    async def read() -> dict[str, object]:
        conn = await asyncpg.connect(PG_URL)
        try:
            tables = [
                r["table_name"]
                for r in await conn.fetch(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1", schema
                )
            ]
            rows: dict[str, object] = {}
            for table in tables:
                found = await conn.fetch(f'SELECT * FROM "{schema}"."{table}"')  # noqa: S608 (catalogue names)
                rows[table] = sorted(repr(sorted(dict(r).items())) for r in found)
            return rows
        finally:
            await conn.close()

    return asyncio.run(read())


async def _seed(settings: Settings) -> None:
    from kgents.memory import AsyncMemory

    async with AsyncMemory(settings=settings) as memory:
        await memory.remember("I prefer Zorblax keyboards with short travel")
        await memory.remember("I value tests that talk to real databases")
        await memory.stack.catch_up()


@pytest.mark.parametrize("seeded", [True, False], ids=["adopted", "fresh"])
def test_demo_on_postgres_leaves_the_users_schema_and_index_as_they_were(
    tmp_path: Path, pg_schema: str, seeded: bool
) -> None:
    mine = Settings(home=tmp_path / "mine", persona="kent", postgres_url=PG_URL, postgres_schema=pg_schema)
    if seeded:
        asyncio.run(_seed(mine))  # the user's entries, fed to the user's own (adopted) embedded index
    env = kgents_env(mine)
    before = _snapshot(pg_schema)
    assert bool(before) == seeded and (not seeded or (before["synapse_state"] and before["persona_garden"]))
    data = _demo(env)
    assert data["ok"] is True
    assert _snapshot(pg_schema) == before  # identity, entries, outbox, soul: all as they were (or still nothing)
    sandbox = str(data["sandbox"]["schema"])  # type: ignore[index]
    assert sandbox.startswith("kgents_demo_") and not asyncio.run(_schema_exists(sandbox))  # its own, dropped
    if not seeded:
        return
    for args in (["synapse", "status"], ["synapse", "run", "--once"], ["garden", "search", "Zorblax"]):
        done = subprocess.run([KGENTS, *args], env=env, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, (args, done.stdout + done.stderr)
    assert "Zorblax keyboards" in done.stdout


def test_demo_interrupted_drops_its_stores_and_leaves_the_users(tmp_path: Path, pg_schema: str) -> None:
    mine = Settings(home=tmp_path / "mine", persona="kent", postgres_url=PG_URL, postgres_schema=pg_schema)
    asyncio.run(_seed(mine))
    before = _snapshot(pg_schema)
    prefix = unique_name("kguser")
    env = kgents_env(mine) | {"KGENTS_REDIS_URL": REDIS_URL, "KGENTS_SPARK_PREFIX": prefix}
    demo = subprocess.Popen([KGENTS, "demo"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in demo.stdout:  # type: ignore[union-attr]
            if re.match(r"\s*2\. ", line):  # the scenario has written to its stores: hold it there
                demo.send_signal(signal.SIGSTOP)  # (a quiet machine finished the demo before a later SIGINT)
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        first = lines.get(timeout=60)
        schema = re.search(r"PostgreSQL schema (kgents_demo_\w+)", first)
        spark = re.search(r"Redis prefix (demo-\w+)", first)
        assert schema and spark, first
        while not re.match(r"\s*2\. ", lines.get(timeout=60)):
            pass
        assert asyncio.run(_schema_exists(schema[1]))
        demo.send_signal(signal.SIGINT)  # Ctrl-C, handled as soon as it runs again
        demo.send_signal(signal.SIGCONT)
        assert demo.wait(timeout=60) == 130, demo.stderr.read()  # type: ignore[union-attr]
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(timeout=10)
    assert not asyncio.run(_schema_exists(schema[1]))
    assert asyncio.run(_redis_keys(f"kgents:{spark[1]}:*")) == []
    assert _snapshot(pg_schema) == before


async def _redis_keys(pattern: str) -> list[bytes]:
    import redis.asyncio as aioredis

    client = aioredis.from_url(REDIS_URL)
    try:
        return [key async for key in client.scan_iter(match=pattern)]
    finally:
        await client.aclose()


async def _schema_exists(schema: str) -> bool:
    conn = await asyncpg.connect(PG_URL)
    try:
        return bool(await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema))
    finally:
        await conn.close()


@pytest.mark.parametrize("anchor", ["postgres", "sqlite"])
async def test_tear_down_drops_the_demos_qdrant_collections_and_no_other(
    tmp_path: Path, pg_schema: str, anchor: str
) -> None:
    """On a Qdrant server the user's memory uses too (in-process Qdrant here): the demo's collections go (named
    after its schema, or only told apart by its index identity on SQLite), the user's stay; its schema goes too."""
    from kgents.kgent.demo_sandbox import open_sandbox, tear_down
    from kgents.memory import AsyncMemory
    from kgents.resonance.server import QdrantServerIndex
    from tests.synapse_support import FaultyIndex

    class Kept(FaultyIndex):  # one Qdrant for both memories: closing one leaves it open
        async def close(self) -> None:
            return None

    async def teach(settings: Settings) -> set[str]:
        memory = await AsyncMemory.open(settings, "kent", index=Kept(qdrant))
        try:
            await memory.remember("I prefer Zorblax keyboards with short travel")
            await memory.stack.catch_up()
        finally:
            await memory.close()
        return {c.name for c in await qdrant.collections()}

    qdrant = QdrantServerIndex.in_memory()
    served = "http://127.0.0.1:6333"  # named so the settings say "Qdrant server"; the index passed is used
    mine = Settings(home=tmp_path / "mine", qdrant_url=served)
    if anchor == "postgres":
        mine = replace(mine, postgres_url=PG_URL, postgres_schema=pg_schema)
    users = await teach(mine)
    sandbox = open_sandbox(mine, None)
    try:
        assert await teach(sandbox.settings) > users  # the demo made collections of its own
    finally:
        await tear_down(sandbox, Kept(qdrant))
    assert {c.name for c in await qdrant.collections()} == users
    assert not sandbox.settings.home.exists()
    if anchor == "postgres":
        assert not await _schema_exists(sandbox.settings.postgres_schema)
    await qdrant.close()


async def test_tear_down_drops_the_rest_when_one_step_fails(tmp_path: Path, pg_schema: str) -> None:
    """A Qdrant that is down when the demo ends: its schema and home still go, and the failure is raised."""
    from kgents.errors import BackendUnavailableError
    from kgents.kgent.demo_sandbox import open_sandbox, tear_down
    from kgents.memory import AsyncMemory
    from kgents.resonance.server import QdrantServerIndex
    from tests.synapse_support import FaultyIndex

    qdrant = QdrantServerIndex.in_memory()
    mine = Settings(home=tmp_path / "mine", qdrant_url="http://127.0.0.1:6333", postgres_url=PG_URL)
    mine = replace(mine, postgres_schema=pg_schema)
    sandbox = open_sandbox(mine, None)
    memory = await AsyncMemory.open(sandbox.settings, "kent", index=FaultyIndex(qdrant))
    await memory.remember("I prefer Zorblax keyboards with short travel")
    await memory.close()
    assert await _schema_exists(sandbox.settings.postgres_schema)
    down = FaultyIndex(qdrant)
    down.down = True
    with pytest.raises(BackendUnavailableError):
        await tear_down(sandbox, down)
    assert not await _schema_exists(sandbox.settings.postgres_schema), "the schema went although Qdrant failed"
    assert not sandbox.settings.home.exists()

"""One slow thing does not stall the embedded server: a write waiting for another process's SQLite write lock holds
up neither a read nor `/livez` (the reads have a connection of their own), and a search leaves the event loop free
while the engine queries (each engine call runs on a worker thread).

The lock test runs a real `kgents serve` on the embedded default, over loopback; the lock is held by a plain
sqlite3 connection, as a CLI write in another process holds it (`BEGIN IMMEDIATE`)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kgents import AsyncMemory
from kgents.config import Settings
from kgents.garden.store import open_store
from kgents.resonance.edge import EdgeIndex
from kgents.server.tokens import Tokens, tokens_on
from tests.server_support import ServerProcess, running_server
from tests.synapse_support import Gate

pytestmark = pytest.mark.slow

ANSWER_S = 3.0
"""How long a read or /livez may take while the write waits (the write waits up to 15 s for the lock)."""
WATCH_S = 2.0
"""How long reads are watched after the write is sent: by then it has reached the server and waits."""
HELD_S = 5.0
"""How long the slow engine query holds (on today's main it held the event loop all that time)."""
LAG_S = 1.0
"""The longest the event loop may stay away while a search's engine query is held."""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(Settings(home=tmp_path / "home")) as running:
        yield running


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=ANSWER_S) as c:
        yield c


async def persona_token(settings: Settings, persona: str) -> str:
    store = await open_store(settings)
    try:
        return (await Tokens(tokens_on(store.anchor)).create(persona, read_only=True))[1]
    finally:
        await store.close()


def test_reads_and_livez_answer_while_a_write_waits_for_another_process_lock(
    server: ServerProcess, client: httpx.Client
) -> None:
    made = client.post("/v1/personas/kent/memories", json={"content": "Green tea in the morning"})
    assert made.status_code == 201
    entry_id = made.json()["id"]
    kent_token = asyncio.run(persona_token(server.settings, "kent"))  # looked up in the anchor on each request
    holder = sqlite3.connect(server.settings.sqlite_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # what a CLI write in another process holds while it writes
    written: list[int] = []
    headers = {"Authorization": f"Bearer {server.token}"}

    def write() -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as other:
            written.append(other.post("/v1/personas/kent/memories", json={"content": "blocked"}).status_code)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        watched_until = time.monotonic() + WATCH_S
        rounds = 0
        while time.monotonic() < watched_until or rounds < 3:  # each call fails past ANSWER_S (httpx timeout)
            assert client.get("/livez").status_code == 200
            assert client.get(f"/v1/personas/kent/memories/{entry_id}").json()["id"] == entry_id
            as_kent = {"Authorization": f"Bearer {kent_token}"}
            assert client.get(f"/v1/personas/kent/memories/{entry_id}", headers=as_kent).status_code == 200
            listed = client.post("/v1/personas/kent/list", json={}).json()["entries"]
            assert [e["id"] for e in listed] == [entry_id]
            hits = client.post("/v1/personas/kent/recall", json={"query": "tea"}).json()["hits"]
            assert [h["id"] for h in hits] == [entry_id]
            rounds += 1
        assert writer.is_alive() and not written, "the write waits for the lock meanwhile"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        writer.join(timeout=60)
    assert written == [201], "the write went through once the lock was let go"


class HeldShard:
    """A real edge shard whose queries first wait at a gate, as a long engine call would (outside the GIL here,
    so the test sees where the query runs: on the event loop it holds the loop, on a worker thread it does not)."""

    def __init__(self, inner: Any, gate: Gate) -> None:
        self.inner = inner
        self.gate = gate

    def query(self, request: Any) -> Any:
        self.gate.entered.set()
        self.gate.opened.wait(HELD_S)
        return self.inner.query(request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_a_search_leaves_the_event_loop_free_while_the_engine_queries(tmp_path: Path) -> None:
    memory = await AsyncMemory.open(Settings(home=tmp_path / "home", persona="kent"))
    try:
        made = await memory.remember("Green tea in the morning")
        index = memory.synapse.index
        assert isinstance(index, EdgeIndex)
        collection = (await memory.synapse.refresh_state()).active.collection
        opened = await index._shards.get(collection)
        gate = Gate()
        opened.shard = HeldShard(opened.shard, gate)
        search = asyncio.create_task(memory.recall("tea"))
        longest, deadline = 0.0, time.monotonic() + 2 * HELD_S
        while not gate.entered.is_set() and time.monotonic() < deadline:  # the loop's lag, tick by tick
            start = time.monotonic()
            await asyncio.sleep(0.005)
            longest = max(longest, time.monotonic() - start)
        assert gate.entered.is_set(), "the search never reached the engine"
        start = time.monotonic()
        await asyncio.sleep(0.005)
        longest = max(longest, time.monotonic() - start)
        assert longest < LAG_S, f"the event loop stood still {longest:.2f} s while the engine queried"
        assert not search.done(), "the engine query is still held"
        gate.opened.set()
        hits = await asyncio.wait_for(search, 30)
        assert [h.entry.id for h in hits] == [made.id]
    finally:
        await memory.close()

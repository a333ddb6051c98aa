"""One slow thing does not stall the embedded server: a write waiting for another process's SQLite write lock holds
up neither a read nor `/livez` (the reads have a connection of their own).

A real `kgents serve` on the embedded default, over loopback; the lock is held by a plain sqlite3 connection, as a
CLI write in another process holds it (`BEGIN IMMEDIATE`)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kgents.config import Settings
from tests.server_support import ServerProcess, running_server

pytestmark = pytest.mark.slow

ANSWER_S = 3.0
"""How long a read or /livez may take while the write waits (the write waits up to 15 s for the lock)."""
WATCH_S = 2.0
"""How long reads are watched after the write is sent: by then it has reached the server and waits."""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(Settings(home=tmp_path / "home")) as running:
        yield running


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=ANSWER_S) as c:
        yield c


def test_reads_and_livez_answer_while_a_write_waits_for_another_process_lock(
    server: ServerProcess, client: httpx.Client
) -> None:
    made = client.post("/v1/personas/kent/memories", json={"content": "Green tea in the morning"})
    assert made.status_code == 201
    entry_id = made.json()["id"]
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

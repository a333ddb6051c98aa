"""Writes whose answer is lost (issue 16 items 1-2), against a real `kgents serve` process on PostgreSQL: a
connection cut mid-write is `outcome_unknown`, a write kept while the database restarts is `not_indexed` (never
500), and sending either again does it once. `RemoteMemory.forget` cut off by a dead server says the outcome is
unknown instead of "cannot connect", and a `Memory` finishes it in this process.

Faults touch only this test's server: its own backends are terminated on the shared PostgreSQL (found by their
client ports), and restarts happen on a private cluster (`tests.private_pg`), never on the shared one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from kgents import Memory
from kgents.config import Settings
from kgents.errors import OutcomeUnknownError
from kgents.home.discovery import ServerInfo
from kgents.memory.local import AsyncMemory
from kgents.memory.remote import RemoteMemory
from tests.fault_support import EntryHold, kill_when_committed, rows_of
from tests.helpers import PG_URL, wait_until
from tests.private_pg import PrivatePostgres, Unavailable, private_postgres
from tests.server_support import ServerProcess, running_server
from tests.test_http_client import raw_server, read_request

pytestmark = pytest.mark.slow


def pg_settings(tmp_path: Path, url: str, schema: str) -> Settings:
    return Settings(home=tmp_path / "home", postgres_url=url, postgres_schema=schema)


@contextlib.asynccontextmanager
async def http(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {server.token}"}
    async with httpx.AsyncClient(base_url=server.url + "/v1/personas/kent", headers=headers, timeout=60) as c:
        yield c


@contextlib.asynccontextmanager
async def connected(url: str, schema: str | None = None) -> AsyncIterator[Any]:
    settings = {"search_path": schema} if schema else None
    conn = await asyncpg.connect(url, server_settings=settings)
    try:
        yield conn
    finally:
        with contextlib.suppress(Exception):
            await conn.close()


async def test_a_write_cut_off_mid_insert_is_outcome_unknown_and_sent_again_is_stored_once(
    tmp_path: Path, pg_schema: str
) -> None:
    """The server's INSERT waits on a lock; its backend is terminated (as a restart would): the answer is 503
    `outcome_unknown` (it was 503 `unavailable`, which reads as "not written"), and the same remember sent again
    stores the entry once."""
    with running_server(pg_settings(tmp_path, PG_URL, pg_schema)) as server:
        entry_id = uuid.uuid4()
        body = {"content": "cut off mid-insert", "entry_id": str(entry_id)}
        async with http(server) as client, connected(PG_URL, pg_schema) as locker, connected(PG_URL) as admin:
            tx = locker.transaction()
            await tx.start()
            await locker.execute("LOCK TABLE persona_garden IN SHARE MODE")
            sending = asyncio.create_task(client.post("/memories", json=body))
            me = await locker.fetchval("SELECT pg_backend_pid()")
            blocked = await wait_until(
                lambda: admin.fetch("SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", me),
                what="the server's insert waiting on the lock",
            )
            for row in blocked:
                await admin.fetchval("SELECT pg_terminate_backend($1)", row["pid"])
            await tx.rollback()
            answer = await sending
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["code"] == "outcome_unknown", answer.text
            assert "may or may not" in answer.json()["error"]["message"]
            again = await client.post("/memories", json=body)
            assert again.status_code == 201, again.text
            third = await client.post("/memories", json=body)
            assert (third.status_code, third.json()) == (201, again.json())
        assert await rows_of(PG_URL, pg_schema, entry_id) == 1


@pytest.fixture
def cluster() -> Iterator[PrivatePostgres]:
    try:
        with private_postgres() as made:
            yield made
    except Unavailable as exc:
        pytest.skip(f"no private PostgreSQL cluster here: {exc}")


async def test_writes_kept_while_postgres_restarts_are_not_indexed_and_sent_again_are_done_once(
    tmp_path: Path, cluster: PrivatePostgres
) -> None:
    """A remember and a forget commit; PostgreSQL stops before their inline apply (a restart): each answer is 503
    `not_indexed` (the write is kept; it was 500 `internal`). Once PostgreSQL is back, each sent again succeeds:
    one entry, then one delete."""
    with running_server(pg_settings(tmp_path, cluster.url, "kgents_restart")) as server:
        entry_id = uuid.uuid4()
        body = {"content": "kept across a restart", "entry_id": str(entry_id)}
        async with http(server) as client:
            for send, landed in (
                (lambda: client.post("/memories", json=body), 1),
                (lambda: client.delete(f"/memories/{entry_id}"), 0),
            ):
                holder = EntryHold(cluster.url, "kgents_restart", entry_id)
                sending = asyncio.create_task(send())
                await wait_until(
                    lambda landed=landed: rows_of(cluster.url, "kgents_restart", entry_id),  # type: ignore[misc]
                    lambda n, landed=landed: n == landed,  # type: ignore[misc]
                    what="the write committed",
                )
                await asyncio.to_thread(cluster.stop, "fast")
                answer = await sending
                assert answer.status_code == 503, answer.text
                assert answer.json()["error"]["code"] == "not_indexed", answer.text
                holder.release()  # its connection died with the cluster
                await asyncio.to_thread(cluster.start)
                again = await send()
                assert again.status_code in (201, 204), again.text
            recall = await client.post("/recall", json={"query": "kept across a restart"})
            assert recall.status_code == 200 and recall.json()["hits"] == []
            history = (await client.get(f"/memories/{entry_id}/history")).json()["records"]
            assert [r["operation"] for r in history] == ["INSERT", "DELETE"]


async def test_a_forget_cut_off_by_a_dead_server_is_outcome_unknown_not_cannot_connect(
    tmp_path: Path, pg_schema: str
) -> None:
    """Issue 16 item 2: the server dies (SIGKILL) after its DELETE committed; the client sends the DELETE again and
    cannot connect. It was "unreachable (KGENTS_SERVER_URL): cannot connect" although the entry was deleted; it is
    `OutcomeUnknownError`, naming the home's server."""
    settings = pg_settings(tmp_path, PG_URL, pg_schema)
    with running_server(settings) as server:
        async with RemoteMemory(server.info, "kent") as remote:
            entry = await remote.remember("deleted as the server dies")
            killer = kill_when_committed(server, settings, entry.id)
            with pytest.raises(OutcomeUnknownError, match="may or may not") as raised:
                await remote.forget(entry.id)
            killer.join(60)
            assert "KGENTS_SERVER_URL" not in str(raised.value)
            assert f"pid {server.proc.pid}" in str(raised.value)
    assert await rows_of(PG_URL, pg_schema, entry.id) == 0


def test_a_memory_finishes_a_forget_its_dead_server_carried_out(tmp_path: Path, pg_schema: str) -> None:
    """The same through `Memory()`, which found the server by discovery: it opens the memory in this process and
    sends the forget again, which finds the entry deleted already: `forget` returns, and the audit holds one
    DELETE."""
    settings = pg_settings(tmp_path, PG_URL, pg_schema)
    with running_server(settings) as server, Memory("kent", settings) as memory:
        assert isinstance(memory.inner, RemoteMemory)
        entry = memory.remember("deleted as the server dies, through Memory")
        killer = kill_when_committed(server, settings, entry.id)
        memory.forget(entry.id)
        killer.join(60)
        assert isinstance(memory.inner, AsyncMemory)
        assert [r.operation.value for r in memory.history(entry.id)] == ["INSERT", "DELETE"]
        assert memory.recall("deleted as the server dies") == []


async def test_a_write_in_doubt_stays_in_doubt_when_its_resend_is_refused() -> None:
    """The server answers `outcome_unknown`, then (the database still away) `unavailable` to the resend: the
    first sending may have been carried out, so the caller hears `OutcomeUnknownError` naming the entry id, never
    "not done". The bench found it: a remember told "unavailable" was in the anchor."""
    answers = [
        (503, {"error": {"code": "outcome_unknown", "message": "lost the connection during a write"}}),
        *[(503, {"error": {"code": "unavailable", "message": "PostgreSQL is starting up"}})] * 8,
    ]
    seen: list[bytes] = []

    async def doubtful(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while answers:
                seen.append(await read_request(reader))
                status, body = answers.pop(0)
                data = json.dumps(body).encode()
                writer.write(b"HTTP/1.1 %d X\r\ncontent-length: %d\r\n\r\n%s" % (status, len(data), data))
                await writer.drain()

    async with raw_server(doubtful) as url, RemoteMemory(ServerInfo(url, "t" * 32), "kent") as remote:
        with pytest.raises(OutcomeUnknownError, match="same entry id") as raised:
            await remote.remember("sent while the database restarts")
    ids = {json.loads(request.rsplit(b"\r\n\r\n", 1)[1])["entry_id"] for request in seen}
    assert len(seen) > 1 and len(ids) == 1, "every sending carries the one id chosen by the client"
    assert ids.pop() in str(raised.value)

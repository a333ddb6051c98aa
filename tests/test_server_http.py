"""`kgents serve` as a client sees it: a real server process on loopback, a real HTTP client (httpx).

The token is required everywhere but /livez, a wrong one is 401, another persona's entry is 404, errors carry a
stable code, the token and server files are 0600, the server file goes away on SIGTERM and a stale one is
ignored."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kgents.config import Settings
from kgents.errors import BackendUnavailableError, ConflictError, NotFoundError, ValidationError
from kgents.home.discovery import ServerInfo, find_server, server_file, token_file
from kgents.memory.remote import RemoteMemory
from tests.helpers import PG_URL, kgents_env
from tests.server_support import KGENTS, ServerProcess, running_server

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    settings = Settings(home=tmp_path / "home")
    if request.param == "postgres":
        schema = request.getfixturevalue("pg_schema")
        settings = Settings(home=tmp_path / "home", postgres_url=PG_URL, postgres_schema=schema)
    with running_server(settings) as running:
        yield running


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}) as c:
        yield c


def test_token_required_everywhere_but_livez(server: ServerProcess) -> None:
    assert httpx.get(f"{server.url}/livez").json() == {"status": "ok"}
    for path in ("/readyz", "/v1/personas/kent/status", "/v1/personas/kent/soul", "/nowhere"):
        missing = httpx.get(f"{server.url}{path}")
        assert missing.status_code == 401, path
        assert missing.json()["error"]["code"] == "unauthorized"
        wrong = httpx.get(f"{server.url}{path}", headers={"Authorization": f"Bearer {server.token}x"})
        assert wrong.status_code == 401, path
        not_bearer = httpx.get(f"{server.url}{path}", headers={"Authorization": server.token})
        assert not_bearer.status_code == 401, path
    written = httpx.post(f"{server.url}/v1/personas/kent/memories", json={"content": "sneaky"})
    assert written.status_code == 401


def test_answers_name_no_server_software(client: httpx.Client) -> None:
    answer = client.get("/livez")
    assert answer.status_code == 200 and "server" not in answer.headers


def test_an_idle_connection_outlives_uvicorns_default_keep_alive(tmp_path: Path) -> None:
    """A face asking every few seconds reuses its connection: the server keeps an idle one longer than uvicorn's
    default 5 s (and longer than RemoteMemory keeps one idle). The idle time itself is what is tested here."""
    from urllib.parse import urlsplit

    with running_server(Settings(home=tmp_path / "home")) as running:
        parts = urlsplit(running.url)
        assert parts.hostname is not None and parts.port is not None
        with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
            for idle_s in (0.0, 5.5):
                time.sleep(idle_s)
                sock.sendall(b"GET /livez HTTP/1.1\r\nHost: kgents\r\n\r\n")
                answer = b""
                while not answer.endswith(b'{"status":"ok"}'):
                    part = sock.recv(65536)
                    assert part, f"the server closed the connection after {idle_s} s idle"
                    answer += part
                assert answer.startswith(b"HTTP/1.1 200")


def test_readyz_checks_anchor_and_index(client: httpx.Client) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready" and ready.json()["index"] == "edge"


def test_every_method_over_http(client: httpx.Client) -> None:
    made = client.post("/v1/personas/kent/memories", json={"content": "I prefer minimal code", "tags": ["style"]})
    assert made.status_code == 201
    entry = made.json()
    assert entry["persona"] == "kent" and entry["entry_type"] == "INSIGHT" and entry["version"] == 1
    batch = client.post("/v1/personas/kent/memories/batch", json={"items": [{"content": "tea"}, {"content": "jazz"}]})
    assert batch.status_code == 201 and len(batch.json()["entries"]) == 2
    hits = client.post("/v1/personas/kent/recall", json={"query": "simplicity in code", "limit": 1}).json()["hits"]
    assert [h["id"] for h in hits] == [entry["id"]] and hits[0]["score"] > 0
    assert client.get(f"/v1/personas/kent/memories/{entry['id'][:8]}").json() == entry
    listed = client.post("/v1/personas/kent/list", json={"filters": {"tags": ["style"]}}).json()["entries"]
    assert [e["id"] for e in listed] == [entry["id"]]
    changed = client.patch(f"/v1/personas/kent/memories/{entry['id']}", json={"content": "I prefer small code"})
    assert changed.json()["version"] == 2
    grown = client.post(f"/v1/personas/kent/memories/{entry['id']}/nurture", json={"evidence": "again"}).json()
    assert grown["version"] == 3 and grown["evidence"] == ["again"]
    history = client.get(f"/v1/personas/kent/memories/{entry['id']}/history").json()["records"]
    assert [r["operation"] for r in history] == ["INSERT", "UPDATE", "UPDATE"]
    assert client.put("/v1/personas/kent/soul/mode", json={"mode": "challenge"}).json()["mode"] == "CHALLENGE"
    assert client.get("/v1/personas/kent/soul").json()["mode"] == "CHALLENGE"
    assert client.get("/v1/personas/kent/status").json()["entries"] == 3
    assert client.delete(f"/v1/personas/kent/memories/{entry['id']}").status_code == 204
    assert client.get(f"/v1/personas/kent/memories/{entry['id']}").status_code == 404


def test_another_persona_is_unreachable(client: httpx.Client) -> None:
    ada = client.post("/v1/personas/ada/memories", json={"content": "ada likes green tea"}).json()
    kent = "/v1/personas/kent"
    for response in (
        client.get(f"{kent}/memories/{ada['id']}"),
        client.get(f"{kent}/memories/{ada['id'][:8]}"),
        client.patch(f"{kent}/memories/{ada['id']}", json={"content": "stolen"}),
        client.post(f"{kent}/memories/{ada['id']}/nurture", json={}),
        client.get(f"{kent}/memories/{ada['id']}/history"),
        client.delete(f"{kent}/memories/{ada['id']}"),
    ):
        assert response.status_code == 404, response.request.url
        assert response.json()["error"]["code"] == "not_found"
    assert client.post(f"{kent}/recall", json={"query": "green tea"}).json()["hits"] == []
    assert client.post(f"{kent}/list", json={}).json()["entries"] == []
    assert client.get(f"/v1/personas/ada/memories/{ada['id']}").json()["content"] == "ada likes green tea"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/v1/personas/kent/memories", {"content": "x", "colour": "red"}, 400, "invalid"),
        ("POST", "/v1/personas/kent/memories", {"content": "x", "type": "NOPE"}, 400, "invalid"),
        ("POST", "/v1/personas/kent/memories", {"tags": ["a"]}, 400, "invalid"),
        ("POST", "/v1/personas/kent/memories", ["not", "an", "object"], 400, "invalid"),
        ("POST", "/v1/personas/kent/recall", {"query": "x", "limit": "ten"}, 400, "invalid"),
        ("POST", "/v1/personas/kent/recall", {"query": "x", "filters": {"lifecycles": ["NOPE"]}}, 400, "invalid"),
        ("POST", "/v1/personas/kent/list", {"filters": {"observed_after": "yesterday"}}, 400, "invalid"),
        ("GET", "/v1/personas/bad%20persona/soul", None, 400, "invalid"),
        ("GET", "/v1/personas/kent/memories/00000000-0000-0000-0000-000000000000", None, 404, "not_found"),
        ("PUT", "/v1/personas/kent/soul/mode", {"mode": "SHOUT"}, 400, "invalid"),
        ("GET", "/v1/nowhere", None, 404, "not_found"),
        ("DELETE", "/v1/personas/kent/soul", None, 405, "method_not_allowed"),
    ],
)
def test_errors_are_json_with_a_stable_code(
    client: httpx.Client, method: str, path: str, body: object, status: int, code: str
) -> None:
    response = client.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]


def test_a_body_that_is_not_json(client: httpx.Client) -> None:
    response = client.post("/v1/personas/kent/memories", content=b"{not json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid"


@pytest.mark.parametrize("opening", [b"[", b'{"a":'])
def test_a_body_nested_100000_deep_is_invalid_not_an_internal_error(client: httpx.Client, opening: bytes) -> None:
    closing = b"]" if opening == b"[" else b"}"
    deep = opening * 100_000 + b"1" + closing * 100_000
    for path in ("/v1/personas/kent/memories", "/v1/personas/kent/recall", "/v1/personas/kent/soul/nudge"):
        response = client.post(path, content=deep)
        assert response.status_code == 400, (path, response.text)
        assert response.json()["error"] == {
            "code": "invalid",
            "message": "the request body is nested too deeply to be a request of this API",
        }
    mcp = client.post("/mcp", content=deep, headers={"Accept": "application/json, text/event-stream"})
    assert 400 <= mcp.status_code < 500, mcp.text
    assert client.get("/v1/personas/kent/status").status_code == 200, "the server carries on"


def test_a_body_over_the_limit_is_refused_before_it_is_read(client: httpx.Client) -> None:
    from kgents.server.bodies import MAX_BODY_BYTES

    declared = client.post("/v1/personas/kent/memories", content=b" " * (MAX_BODY_BYTES + 1))
    assert declared.status_code == 413 and "over the limit" in declared.json()["error"]["message"]
    assert declared.json()["error"]["code"] == "too_large"

    def streamed() -> Iterator[bytes]:  # no Content-Length: refused once the stream passes the limit
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b" " * 65536

    chunked = client.post("/v1/personas/kent/memories", content=streamed())
    assert chunked.status_code == 413 and "over the limit" in chunked.json()["error"]["message"]
    mcp = client.post("/mcp", content=b" " * (MAX_BODY_BYTES + 1), headers={"Accept": "application/json"})
    assert mcp.status_code == 413 and mcp.json()["error"]["code"] == "too_large"
    assert client.get("/v1/personas/kent/status").status_code == 200, "the server carries on"


async def test_remote_memory_raises_the_local_errors(server: ServerProcess) -> None:
    async with RemoteMemory(server.info, "kent") as kent, RemoteMemory(server.info, "ada") as ada:
        mine = await kent.remember("kent likes strong coffee")
        with pytest.raises(NotFoundError):
            await ada.get(mine.id)
        with pytest.raises(ValidationError, match="cannot update"):
            await kent.update(mine.id, lifecycle="TREE")
        with pytest.raises(ValidationError):
            await kent.remember("x", confidence=2.0)
        with pytest.raises(ConflictError):
            await kent.remember("the same id again", entry_id=mine.id)
        changed = await kent.update(mine.id, affinities={"joy": 0.5}, tags=("drinks", "mornings"))
        assert changed.eigenvector_affinities == {"joy": 0.5} and changed.tags == ("drinks", "mornings")
        with pytest.raises(ValidationError):
            await kent.update(mine.id, tags="drinks")  # one bare string is an error, not its letters
    wrong = ServerInfo(server.url, server.token + "x")
    async with RemoteMemory(wrong, "kent") as stranger:
        with pytest.raises(BackendUnavailableError, match="refused our token"):
            await stranger.status()


def test_token_and_server_files_are_private(server: ServerProcess) -> None:
    for path in (token_file(server.settings), server_file(server.settings)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    record = json.loads(server_file(server.settings).read_text())
    assert record["url"] == server.url and record["pid"] == server.proc.pid and record["started_at"] > 0
    code, out, err = server.stop()
    assert code == 0, err
    assert "stopped" in out
    assert not server_file(server.settings).exists()
    assert find_server(server.settings) is None


def test_a_second_server_for_the_home_is_refused(server: ServerProcess) -> None:
    done = subprocess.run(
        [str(KGENTS), "serve", "--port", "0"], env=kgents_env(server.settings), capture_output=True, text=True
    )
    assert done.returncode == 69, done.stderr
    assert f"(pid {server.proc.pid})" in done.stderr and server.url in done.stderr


def test_a_stale_server_file_is_ignored_and_replaced(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    settings.home.mkdir(parents=True)
    stale = {"url": "http://127.0.0.1:9", "pid": _dead_pid(), "started_at": 1.0}
    server_file(settings).write_text(json.dumps(stale))
    assert find_server(settings) is None
    with subprocess.Popen(["sleep", "30"]) as alive:  # a live pid that is no server: /livez does not answer
        server_file(settings).write_text(json.dumps(stale | {"pid": alive.pid}))
        assert find_server(settings) is None
        alive.kill()
    with running_server(settings) as running:
        assert json.loads(server_file(settings).read_text())["pid"] == running.proc.pid


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_host_beyond_loopback_needs_an_explicit_token(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    done = subprocess.run(
        [str(KGENTS), "serve", "--host", "0.0.0.0", "--port", "0"],
        env=kgents_env(settings),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 78, done.stderr
    assert "KGENTS_SERVER_TOKEN" in done.stderr and "Traceback" not in done.stderr
    assert not server_file(settings).exists()


def test_the_token_can_come_from_the_environment(tmp_path: Path) -> None:
    token = "Kq8vN2xR7mT4wZ9bL3cH6jP1"
    settings = Settings(home=tmp_path / "home", server_token=token)
    with running_server(settings) as running:
        assert not token_file(settings).exists()
        assert httpx.get(f"{running.url}/readyz", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert token not in running.proc.args  # never on a command line
    assert os.environ.get("KGENTS_SERVER_TOKEN") is None


def test_the_listening_socket_names_tcp_so_responses_are_not_delayed() -> None:
    """asyncio sets TCP_NODELAY only on connections of a socket whose protocol is IPPROTO_TCP; with proto 0
    every response waited ~40 ms for a delayed ACK (bench/server.py showed /livez at 44 ms)."""
    from kgents.server.run import bind

    sock = bind("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()

"""Scoped tokens on a real `kgents serve` (both anchors): every route, walked from the app's own route table, with
a token of another persona (403), a read-only token of the route's persona (403 on every write), a read-write
token of it, and the operator token (allowed everywhere). Then MCP over HTTP bound to the token's persona, and
`Memory()` / the CLI holding a persona token."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from kgents import Memory
from kgents.config import Settings
from kgents.errors import ConfigError, PermissionDeniedError
from kgents.garden.store import open_store
from kgents.server.auth import Need
from kgents.server.routes import ServedHomeAPI, route_needs
from kgents.server.tokens import Tokens, tokens_on
from tests.helpers import PG_URL, kgents_env
from tests.server_support import KGENTS, ServerProcess, cli, running_server

pytestmark = pytest.mark.slow

MCP_HEADERS = {"Accept": "application/json, text/event-stream"}
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/v1/personas/{persona}/memories"): {"content": "a memory"},
    ("POST", "/v1/personas/{persona}/memories/batch"): {"items": [{"content": "one"}, {"content": "two"}]},
    ("POST", "/v1/personas/{persona}/recall"): {"query": "memory"},
    ("POST", "/v1/personas/{persona}/list"): {},
    ("PATCH", "/v1/personas/{persona}/memories/{ref}"): {"content": "changed"},
    ("POST", "/v1/personas/{persona}/memories/{ref}/nurture"): {"evidence": "seen again"},
    ("POST", "/v1/personas/{persona}/memories/{ref}/reassess"): {"confidence": 0.6},
    ("POST", "/v1/personas/{persona}/memories/{ref}/compost"): {},
    ("PUT", "/v1/personas/{persona}/soul/mode"): {"mode": "challenge"},
    ("POST", "/v1/personas/{persona}/soul/nudge"): {"shifts": {"joy": 0.01}},
    ("POST", "/v1/personas/{persona}/soul/interactions"): {"tokens": 1},
    ("POST", "/v1/personas/{persona}/dream"): {"dry_run": True},
    ("POST", "/v1/personas/{persona}/index/build"): {"now": False, "wait": 0},
    ("POST", "/v1/admin/synapse/reconcile"): {},
    ("POST", "/v1/admin/synapse/reindex"): {},
    ("POST", "/mcp"): {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
}
"""A valid request body for every route that takes one (the others take none)."""

ROUTES = sorted(route_needs(cast(ServedHomeAPI, None)), key=lambda r: r[1] == "/v1/admin/personas/{persona}")
"""Every route the app serves, the persona's forgetting last (it removes what the others use)."""


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    settings = Settings(home=tmp_path / "home")
    if request.param == "postgres":
        settings = Settings(
            home=tmp_path / "home", postgres_url=PG_URL, postgres_schema=request.getfixturevalue("pg_schema")
        )
    with running_server(settings) as running:
        yield running


def make_token(settings: Settings, persona: str, *, read_only: bool = False) -> str:
    """A persona token made in the anchor the server reads (as `kgents token create` does: tests/test_tokens.py)."""

    async def made() -> str:
        store = await open_store(settings)
        try:
            return (await Tokens(tokens_on(store.anchor)).create(persona, read_only=read_only))[1]
        finally:
            await store.close()

    return asyncio.run(made())


def call(server: ServerProcess, token: str, method: str, path: str, persona: str) -> httpx.Response:
    """One request of the route `(method, path)` on `persona`, with a fresh entry of it where the path names one."""
    operator = {"Authorization": f"Bearer {server.token}"}
    concrete = path.replace("{persona}", persona)
    if "{ref}" in concrete:
        planted = httpx.post(f"{server.url}/v1/personas/{persona}/memories", json={"content": "a"}, headers=operator)
        concrete = concrete.replace("{ref}", planted.json()["id"])
    headers = {"Authorization": f"Bearer {token}", **(MCP_HEADERS if path == "/mcp" else {})}
    body = BODIES.get((method, path))
    return httpx.request(method, f"{server.url}{concrete}", json=body, headers=headers, timeout=60)


def expected(need: Need, column: str) -> str:
    """`403` or `ok` for a route needing `need` with the token of `column`."""
    if column == "operator" or need is Need.ANY:
        return "ok"
    if need is Need.OPERATOR or column == "other persona":
        return "403"
    return "403" if column == "read-only, own" and need is Need.WRITE else "ok"


def outcome(response: httpx.Response) -> str:
    if response.status_code == 403:
        assert response.json()["error"]["code"] == "forbidden"
        return "403"
    assert 200 <= response.status_code < 300, (response.request.method, response.request.url, response.text)
    return "ok"


def test_every_route_with_every_kind_of_token(server: ServerProcess) -> None:
    settings = server.settings
    assert {(m, p) for m, p, _ in ROUTES if m in ("POST", "PUT", "PATCH")} <= set(BODIES), "a body for every write"
    alice, alice_ro = make_token(settings, "alice"), make_token(settings, "alice", read_only=True)
    operator = {"Authorization": f"Bearer {server.token}"}
    bobs = httpx.post(f"{server.url}/v1/personas/bob/memories", json={"content": "bob's secret"}, headers=operator)
    columns = {  # column: (token, persona of the route)
        "other persona": (alice, "bob"),
        "read-only, own": (alice_ro, "alice"),
        "read-write, own": (alice, "alice"),
        "operator": (server.token, "bob"),
    }
    table: list[list[str]] = []
    for method, path, need in ROUTES:
        row = [f"{method} {path}", need.value]
        for column, (token, persona) in columns.items():
            if column == "operator" or expected(need, column) == "403" or path != "/v1/admin/personas/{persona}":
                got = outcome(call(server, token, method, path, persona))
                assert got == expected(need, column), (method, path, column)
                row.append(got)
        table.append(row)
        if row[1] != "operator" and method != "DELETE":
            seen = httpx.get(f"{server.url}/v1/personas/bob/memories/{bobs.json()['id']}", headers=operator)
            assert seen.json()["content"] == "bob's secret", "another persona's token changed nothing of bob's"
    print_table(["route", "needs", *columns], table)
    forgotten = httpx.get(f"{server.url}/v1/personas/bob/status", headers=operator).json()
    assert forgotten["entries"] == 0, "the operator's DELETE /v1/admin/personas/bob ran last"


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)))


def test_a_revoked_or_unknown_token_is_401(server: ServerProcess) -> None:
    token = make_token(server.settings, "alice")
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{server.url}/v1/whoami", headers=headers).json()["persona"] == "alice"
    token_id = token[4:16]
    assert cli(server.settings, "token", "revoke", token_id).returncode == 0
    assert httpx.get(f"{server.url}/v1/personas/alice/status", headers=headers).status_code == 401
    forged = f"kgt_{token_id}_{'A' * 43}"
    answer = httpx.get(f"{server.url}/v1/personas/alice/status", headers={"Authorization": f"Bearer {forged}"})
    assert answer.status_code == 401


async def test_mcp_over_http_is_the_tokens_persona(server: ServerProcess) -> None:
    alice = await asyncio.to_thread(make_token, server.settings, "alice")
    alice_ro = await asyncio.to_thread(make_token, server.settings, "alice", read_only=True)
    url = f"{server.url}/mcp"

    async def tool(token: str, name: str, arguments: dict[str, Any]) -> tuple[bool, Any]:
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            result = await client.call_tool(name, arguments)
            text = " ".join(getattr(block, "text", "") for block in result.content)
            return result.is_error, text if result.is_error else result.structured_content

    failed, planted = await tool(alice, "remember", {"content": "alice's own over MCP"})
    assert not failed and planted["persona"] == "alice"
    failed, found = await tool(alice_ro, "recall", {"query": "alice's own over MCP"})
    assert not failed and [h["id"] for h in found["hits"]] == [planted["id"]]
    failed, message = await tool(alice_ro, "remember", {"content": "not allowed"})
    assert failed and "read-only" in message
    failed, _ = await tool(alice_ro, "forget", {"entry_id": planted["id"]})
    assert failed
    failed, mine = await tool(server.token, "remember", {"content": "the operator's is the server's persona"})
    assert not failed and mine["persona"] == "kent"
    failed, theirs = await tool(alice, "recall", {"query": "the operator's is the server's persona", "min_score": 0})
    assert not failed and {h["persona"] for h in theirs["hits"]} == {"alice"}, "alice's token reaches nothing of kent's"


def test_a_persona_token_sees_its_graph_state_but_not_the_whole_index(server: ServerProcess) -> None:
    """The index is every persona's: its counts tell how much the others hold, so only the operator sees them."""
    operator = {"Authorization": f"Bearer {server.token}"}
    for i in range(3):
        httpx.post(f"{server.url}/v1/personas/bob/memories", json={"content": f"bob's {i}"}, headers=operator)
    alice = {"Authorization": f"Bearer {make_token(server.settings, 'alice')}"}
    base = f"{server.url}/v1/personas/alice"
    seen = {
        who: (
            httpx.get(f"{base}/status", headers=headers).json()["index_graph"],
            httpx.post(f"{base}/index/build", json={"wait": 5}, headers=headers).json()["graph"],
        )
        for who, headers in (("operator", operator), ("alice", alice))
    }
    for graph in seen["operator"]:
        assert graph is not None and graph["points"] >= 3
    for graph in seen["alice"]:
        assert graph is not None and "state" in graph and not {"points", "in_graph", "outside"} & set(graph), graph


def test_memory_holding_a_persona_token_is_that_persona(server: ServerProcess) -> None:
    token = make_token(server.settings, "alice")
    settings = Settings(home=server.settings.home / "elsewhere", server_url=server.url, server_token=token)
    with Memory(settings=settings) as memory:
        assert memory.persona == "alice"
        entry = memory.remember("alice remembers through her own token")
        assert entry.persona == "alice"
    with pytest.raises(ConfigError, match="token of persona alice"):
        Memory(persona="bob", settings=settings)
    with pytest.raises(ConfigError, match="token of persona alice"):
        Memory(settings=settings.with_persona("bob"))
    ro = Settings(
        home=settings.home, server_url=server.url, server_token=make_token(server.settings, "alice", read_only=True)
    )
    with Memory(settings=ro) as memory, pytest.raises(PermissionDeniedError, match="read-only"):
        memory.remember("refused")


def test_the_cli_says_forbidden_in_one_line_with_its_own_exit_code(server: ServerProcess) -> None:
    token = make_token(server.settings, "alice")
    env = kgents_env(Settings(home=server.settings.home / "elsewhere"), "bob")
    env |= {"KGENTS_SERVER_URL": server.url, "KGENTS_SERVER_TOKEN": token}
    done = subprocess.run([str(KGENTS), "garden", "search", "x"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 77, done.stderr
    assert done.stderr.strip() == "kgents: this token is persona alice's; it cannot reach persona bob"
    status = subprocess.run([str(KGENTS), "synapse", "reconcile"], env=env, capture_output=True, text=True, timeout=60)
    assert status.returncode == 77 and "operator" in status.stderr, status.stderr

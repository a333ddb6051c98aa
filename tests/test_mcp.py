"""kgents over MCP, tested with the SDK's own client: in memory, over stdio (`kgents mcp`) and over streamable
HTTP (the ASGI app of `build_mcp_app` under uvicorn on a free loopback port), on both anchors."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
import uvicorn
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from kgents import AsyncMemory
from kgents.config import Settings
from kgents.garden.service import PersonaGarden
from kgents.home.discovery import home_server, read_server_file
from kgents.memory.api import MemoryAPI
from kgents.resonance.server import QdrantServerIndex
from kgents.server.mcp import build_mcp_app, build_mcp_server
from tests.helpers import kgents_env, wait_until
from tests.server_support import cli, running_server

TOOLS = {"remember", "recall", "get", "list", "nurture", "forget", "history", "soul_mode", "status"}
READ_ONLY = {"recall", "get", "list", "history", "status"}


@pytest.fixture
async def memory(anchor_settings: Settings) -> AsyncIterator[AsyncMemory]:
    index = QdrantServerIndex.in_memory() if anchor_settings.postgres_url else None
    opened = await AsyncMemory.open(anchor_settings.with_persona("kent"), index=index)
    try:
        yield opened
    finally:
        await opened.close()


def data(result: CallToolResult) -> Any:
    assert not result.is_error, result.content
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    assert result.is_error
    return " ".join(getattr(block, "text", "") for block in result.content)


async def session(client: Client, memory: MemoryAPI | None = None) -> dict[str, Any]:
    """The conversation every transport must carry: tool list, remember, recall, and the rest of the tools."""
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    for name, tool in tools.items():
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is (name in READ_ONLY), name
        assert "persona" not in json.dumps(tool.input_schema), f"{name} must not take a persona"
    assert tools["forget"].annotations is not None and tools["forget"].annotations.destructive_hint is True

    planted = data(await client.call_tool("remember", {"content": "I prefer minimal code", "tags": ["style"]}))
    assert planted["persona"] == "kent" and planted["entry_type"] == "INSIGHT"
    found = data(await client.call_tool("recall", {"query": "minimal code style", "limit": 3}))
    assert found["hits"][0]["id"] == planted["id"]
    never = {"query": "When did I go skydiving in Peru?"}
    assert data(await client.call_tool("recall", never))["hits"] == [], "the default bar: nothing relevant, nothing"
    everything = data(await client.call_tool("recall", never | {"min_score": 0}))["hits"]
    assert [h["id"] for h in everything] == [planted["id"]]
    paraphrase = data(await client.call_tool("recall", {"query": "simplicity in code", "min_score": 0}))
    assert paraphrase["hits"][0]["id"] == planted["id"], "min_score 0: every hit, by meaning too"
    short = planted["id"][:8]
    assert data(await client.call_tool("get", {"entry_id": short}))["content"] == "I prefer minimal code"
    assert [e["id"] for e in data(await client.call_tool("list", {"tags": ["style"]}))["entries"]] == [planted["id"]]
    nurtured = data(await client.call_tool("nurture", {"entry_id": short, "evidence": "deleted a wrapper"}))
    assert nurtured["version"] == 2 and nurtured["evidence"] == ["deleted a wrapper"]
    changes = data(await client.call_tool("history", {"entry_id": short}))["changes"]
    assert [c["operation"] for c in changes] == ["INSERT", "UPDATE"]
    assert data(await client.call_tool("soul_mode", {"mode": "challenge"}))["mode"] == "CHALLENGE"
    assert data(await client.call_tool("soul_mode", {}))["mode"] == "CHALLENGE"
    for name, arguments in (("remember", {"content": "I am bob now", "persona": "bob"}), ("status", {"verbose": 1})):
        refused = error_text(await client.call_tool(name, arguments))
        assert "unknown argument" in refused and repr(next(iter(set(arguments) - {"content"}))) in refused, refused
    assert all(tool.input_schema.get("additionalProperties") is False for tool in tools.values())
    assert data(await client.call_tool("status", {}))["entries"] == 1, "the refused remember wrote nothing"
    bad = await client.call_tool("remember", {"content": "x", "type": "OPINION"})
    assert "type must be one of" in error_text(bad) or "entry_type must be one of" in error_text(bad)
    bad_filter = await client.call_tool("recall", {"query": "code", "types": ["OPINION"]})
    assert "entry_types must be one of" in error_text(bad_filter)
    bad_time = await client.call_tool("remember", {"content": "x", "observed_at": "yesterday"})
    assert "observed_at must be an ISO-8601 timestamp" in error_text(bad_time)
    bad_asked = await client.call_tool("recall", {"query": "code", "asked_at": "2024-05-15T10:00:00"})
    assert "asked_at must carry a time zone" in error_text(bad_asked)
    asked = {"query": "minimal code last week", "asked_at": "2024-05-15T10:00:00+00:00", "min_score": 0}
    assert data(await client.call_tool("recall", asked))["hits"][0]["id"] == planted["id"], "a boost, not a filter"
    assert data(await client.call_tool("forget", {"entry_id": planted["id"]}))["forgotten"] == planted["id"]
    assert data(await client.call_tool("recall", {"query": "simplicity in code"}))["hits"] == []
    assert "no garden entry" in error_text(await client.call_tool("get", {"entry_id": planted["id"]})).lower()
    return {"tools": sorted(tools), "remember": planted, "recall": found}


async def test_in_memory(memory: AsyncMemory) -> None:
    async with Client(build_mcp_server(lambda: memory)) as client:
        await session(client, memory)


async def test_another_persona_is_unreachable(memory: AsyncMemory) -> None:
    theirs = await PersonaGarden(memory.garden.store, "ana").plant("Ana's secret: minimal code", "PREFERENCE")
    await memory.synapse.catch_up(30)

    async def opened() -> MemoryAPI:  # the source may be async
        return memory

    async with Client(build_mcp_server(opened)) as client:
        hits = data(await client.call_tool("recall", {"query": "minimal code"}))["hits"]
        assert all(hit["persona"] == "kent" for hit in hits) and not hits
        for tool in ("get", "nurture", "history", "forget"):
            result = await client.call_tool(tool, {"entry_id": str(theirs.id)})
            assert result.is_error or (tool == "history" and data(result)["changes"] == []), tool
        extra = await client.call_tool("recall", {"query": "minimal code", "persona": "ana"})
        assert "unknown argument(s) 'persona'" in error_text(extra), "a persona argument is refused by name"
    assert await PersonaGarden(memory.garden.store, "ana").get(theirs.id) == theirs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """`app` under uvicorn on a free loopback port, in this event loop; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="auto"))
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return server.started or task.done()

    await wait_until(started, timeout=20, what="uvicorn started")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


def host_app(app: Any, how: str) -> Any:
    """The MCP app alone, as a route of a Starlette app (whose lifespan never reaches it: the first request
    starts it), or mounted at /mcp with the host's lifespan running the mount's (as `kgents serve` does)."""
    if how == "top-app":
        return app
    if how == "route":
        return Starlette(routes=[Route("/mcp", app)])

    @asynccontextmanager
    async def lifespan(host: Starlette) -> AsyncIterator[None]:
        async with app.router.lifespan_context(app):
            yield

    return Starlette(routes=[Mount("/mcp", app=app)], lifespan=lifespan)


@pytest.mark.parametrize("how", ["top-app", "route", "mount"])
async def test_over_streamable_http(memory: AsyncMemory, how: str) -> None:
    app = build_mcp_app(lambda: memory)
    async with served(host_app(app, how)) as base, Client(f"{base}/mcp") as client:
        await session(client, memory)
    await app.aclose()


def kgents_command() -> str:
    found = shutil.which("kgents", path=str(Path(sys.executable).parent))
    assert found, "the kgents console script is installed beside this python"
    return found


@pytest.mark.slow
async def test_over_stdio(anchor_settings: Settings) -> None:
    params = StdioServerParameters(command=kgents_command(), args=["mcp"], env=kgents_env(anchor_settings, "kent"))
    async with Client(params) as client:
        await session(client)


@pytest.mark.slow
async def test_over_stdio_beside_a_running_server(tmp_path: Path) -> None:
    """On the embedded default `kgents serve` owns the index: `kgents mcp` of the same home goes through it."""
    settings = Settings(home=tmp_path / "home")
    with running_server(settings):
        params = StdioServerParameters(command=kgents_command(), args=["mcp"], env=kgents_env(settings, "kent"))
        async with Client(params) as client:
            await session(client)


@pytest.mark.slow
async def test_over_stdio_the_session_is_the_home_server(tmp_path: Path) -> None:
    """On the embedded default with no server running, a `kgents mcp` session (open for hours beside a desktop
    agent) is the home's server: a plant and a search in other processes at the same time neither wait nor fail,
    the plant is recalled through MCP, and the server file goes with the session."""
    settings = Settings(home=tmp_path / "home")
    params = StdioServerParameters(command=kgents_command(), args=["mcp"], env=kgents_env(settings, "kent"))
    async with Client(params) as client:
        mine = data(await client.call_tool("remember", {"content": "I prefer minimal code"}))
        serving = home_server(settings)
        assert serving is not None, "the session announced itself in the home's server file"
        planted, found = await asyncio.gather(
            asyncio.to_thread(cli, settings, "garden", "plant", "I like green tea", "--type", "PREFERENCE"),
            asyncio.to_thread(cli, settings, "garden", "search", "minimal code", "--json"),
        )
        for done in (planted, found):
            assert done.returncode == 0, done.stderr
            assert "waiting" not in done.stderr and "in use by" not in done.stderr
        assert json.loads(found.stdout)["hits"][0]["id"] == mine["id"]

        async def recalled() -> list[str]:
            hits = data(await client.call_tool("recall", {"query": "green tea", "limit": 3}))["hits"]
            return [hit["content"] for hit in hits]

        got = await wait_until(recalled, lambda c: "I like green tea" in c, timeout=30, what="the CLI plant recalled")
        assert got[0] == "I like green tea"

        async def pending() -> int:
            return int(data(await client.call_tool("status", {}))["pending"])

        await wait_until(pending, lambda n: n == 0, timeout=30, what="nothing pending")
    await wait_until(
        lambda: asyncio.to_thread(read_server_file, settings), lambda f: f is None, timeout=30, what="no server file"
    )


@pytest.mark.slow
async def test_a_second_stdio_session_outlives_the_first(tmp_path: Path) -> None:
    """Two desktop agents on one home: the second session goes through the first, and when the first ends the
    second's next call attaches again (it becomes the home's server) with nothing lost."""
    settings = Settings(home=tmp_path / "home")
    params = StdioServerParameters(command=kgents_command(), args=["mcp"], env=kgents_env(settings, "kent"))
    first_up, first_done = asyncio.Event(), asyncio.Event()

    async def first_session() -> None:
        async with Client(params) as first:
            data(await first.call_tool("remember", {"content": "I prefer minimal code"}))
            first_up.set()
            await first_done.wait()

    first = asyncio.create_task(first_session())
    await asyncio.wait_for(first_up.wait(), 60)
    owner = home_server(settings)
    assert owner is not None
    async with Client(params) as second:
        assert data(await second.call_tool("status", {}))["entries"] == 1
        assert home_server(settings) == owner, "the second session went through the first"
        first_done.set()
        await asyncio.wait_for(first, 60)
        hits = data(await second.call_tool("recall", {"query": "minimal code"}))["hits"]
        assert [h["content"] for h in hits] == ["I prefer minimal code"]
        now = home_server(settings)
        assert now is not None and now.pid != owner.pid, "the second session is the home's server now"


@pytest.mark.slow
async def test_sigterm_ends_a_serving_session_cleanly(tmp_path: Path) -> None:
    """SIGTERM while the client still holds stdin open: exit 0, the server file gone, the index free for the next
    process (no wait for it)."""
    settings = Settings(home=tmp_path / "home")
    process = await asyncio.create_subprocess_exec(
        kgents_command(),
        "mcp",
        env=kgents_env(settings, "kent"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:

        async def serving() -> int | None:
            found = await asyncio.to_thread(home_server, settings)
            return None if found is None else found.pid

        await wait_until(serving, lambda pid: pid == process.pid, timeout=60, what="the session serving the home")
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, err
        assert b"Traceback" not in err
        assert read_server_file(settings) is None
        found = await asyncio.to_thread(cli, settings, "garden", "search", "anything", "--json")
        assert found.returncode == 0, found.stderr
        assert "waiting" not in found.stderr
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_stdio_startup_error_is_one_line(tmp_path: Path) -> None:
    env = kgents_env(Settings(home=tmp_path / "home"), persona="kent")
    env["KGENTS_POSTGRES_URL"] = "mysql://nowhere"
    process = await asyncio.create_subprocess_exec(
        kgents_command(),
        "mcp",
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(b""), 60)
    assert process.returncode == 78 and out == b""
    assert err.decode().strip().startswith("kgents: KGENTS_POSTGRES_URL must start with")


@pytest.mark.slow
async def test_through_kgents_serve(anchor_settings: Settings) -> None:
    """`/mcp` on a real `kgents serve`: the bearer token is required (none or a wrong one: 401), and the tools reach
    the server's own persona only."""
    with running_server(anchor_settings) as server:
        url = f"{server.url}/mcp"
        probe = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        async with httpx.AsyncClient() as raw:
            assert (await raw.post(url, json=probe)).status_code == 401
            wrong = await raw.post(url, json=probe, headers={"Authorization": f"Bearer {server.token}x"})
            assert wrong.status_code == 401
        headers = {"Authorization": f"Bearer {server.token}"}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            await session(client)
            assert data(await client.call_tool("remember", {"content": "kent's own"}))["persona"] == "kent"
        async with httpx.AsyncClient(headers=headers, timeout=30) as raw:
            theirs = await raw.post(f"{server.url}/v1/personas/ana/recall", json={"query": "kent's own"})
            assert theirs.json()["hits"] == [], "what MCP remembered is kent's, not ana's"

"""A long-lived `Memory()` that found its server by discovery follows the home (issue 16 item 4): after a SIGKILL
of that server it goes through the server that took over, and with none left it opens the memory in this process,
becoming the home's server as `kgents mcp` does, so other processes go through it. Real `kgents serve` processes,
killed for real."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kgents import Memory
from kgents.config import Settings
from kgents.errors import BackendUnavailableError
from kgents.home.discovery import ServerInfo, read_server_file
from kgents.memory.local import AsyncMemory
from kgents.memory.remote import RemoteMemory
from tests.server_support import cli, start_server

pytestmark = pytest.mark.slow


def test_a_memory_follows_its_home_to_the_next_server_and_then_into_this_process(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", persona="kent")
    first = start_server(settings)
    second = None
    try:
        with Memory("kent", settings) as memory:
            assert isinstance(memory.inner, RemoteMemory) and memory.inner.server.pid == first.proc.pid
            before = memory.remember("written through the first server")
            first.proc.kill()
            first.proc.wait()
            second = start_server(settings)
            after = memory.remember("written through the second server")  # it was "unreachable", for good
            assert isinstance(memory.inner, RemoteMemory) and memory.inner.server.pid == second.proc.pid
            hits = {h.entry.id for h in memory.recall("written through the server", limit=5)}
            assert {before.id, after.id} <= hits
            second.proc.kill()
            second.proc.wait()
            alone = memory.remember("written in this process")
            assert isinstance(memory.inner, AsyncMemory)
            hits = {h.entry.id for h in memory.recall("written", limit=5)}
            assert {before.id, after.id, alone.id} <= hits
            # it holds the index now, and serves the home: another process goes through it, with no wait
            serving = read_server_file(settings)
            assert serving is not None and serving["pid"] == os.getpid()
            found = cli(settings, "garden", "search", "written in this process", "--json")
            assert found.returncode == 0 and "waiting" not in found.stderr, found.stderr
            assert str(alone.id) in found.stdout
    finally:
        for server in (first, second):
            if server is not None and server.proc.poll() is None:
                server.proc.kill()
                server.proc.wait()


async def test_a_server_named_by_url_is_not_followed_and_the_message_says_so(tmp_path: Path) -> None:
    """A server given by KGENTS_SERVER_URL (no pid) is the caller's choice: it is not replaced, and its failure
    names KGENTS_SERVER_URL. The home's own server is named as such, never as KGENTS_SERVER_URL."""
    settings = Settings(home=tmp_path / "home", persona="kent")
    server = start_server(settings)
    server.proc.kill()
    server.proc.wait()
    named = RemoteMemory(ServerInfo(server.url, server.token), "kent", settings=settings)
    with pytest.raises(BackendUnavailableError, match="unreachable") as by_url:
        await named.status()
    assert "KGENTS_SERVER_URL" in str(by_url.value)
    await named.close()
    home = RemoteMemory(server.info, "kent")
    with pytest.raises(BackendUnavailableError, match="unreachable") as by_home:
        await home.status()
    assert "KGENTS_SERVER_URL" not in str(by_home.value) and f"pid {server.proc.pid}" in str(by_home.value)
    await home.close()

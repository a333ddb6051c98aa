"""Slow clients are dropped (issue 16 item 6): the server's protocol gives a request's head and body deadlines, so
slow-loris connections, with the token and without it, are closed once they pass them; a client that hangs up
mid-request is no `internal error` in the log. Real sockets over loopback against the real app (`hosting`, as
`kgents serve` runs it), with the deadlines shortened for the test."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kgents.config import Settings
from kgents.home.discovery import ensure_token
from kgents.server.hub import MemoryHub
from kgents.server.run import hosting
from kgents.server.slow_clients import GuardedHttpToolsProtocol

pytestmark = pytest.mark.slow

HEAD_S, BODY_S = 1.0, 2.0
TRICKLE_S = 0.25
"""A byte every this many seconds: slower than any deadline allows for a whole request."""


@contextlib.asynccontextmanager
async def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[str, int, str]]:
    monkeypatch.setattr(GuardedHttpToolsProtocol, "header_timeout_s", HEAD_S)
    monkeypatch.setattr(GuardedHttpToolsProtocol, "body_timeout_s", BODY_S)
    settings = Settings(home=tmp_path / "home")
    hub = await MemoryHub.open(settings)
    try:
        async with hosting(hub, port=0, announce_file=False) as hosted:
            host, port = hosted.url.removeprefix("http://").rsplit(":", 1)
            yield host, int(port), ensure_token(settings)
    finally:
        await hub.close()


def request_head(token: str | None, length: int) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST /v1/personas/kent/memories HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


async def slow_client(host: str, port: int, token: str | None, slow_part: str) -> tuple[float, bytes]:
    """Send a request a byte at a time (its head, or its body after a whole head); how long until the server
    closed the connection, and what it answered."""
    reader, writer = await asyncio.open_connection(host, port)
    started = time.monotonic()
    body = b'{"content": "' + b"x" * 200 + b'"}'
    head = request_head(token, len(body))
    if slow_part == "body":
        writer.write(head)
        trickle = body
    else:
        trickle = head + body
    answer = b""

    async def read_all() -> None:
        nonlocal answer
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                answer += chunk

    reading = asyncio.create_task(read_all())
    try:
        for byte in trickle:
            if reading.done():
                break
            with contextlib.suppress(ConnectionError):
                writer.write(bytes([byte]))
                await writer.drain()
            await asyncio.wait([reading], timeout=TRICKLE_S)
        await asyncio.wait_for(reading, 30)
        return time.monotonic() - started, answer
    finally:
        reading.cancel()
        writer.close()


async def test_eighty_slow_loris_connections_are_closed_at_their_deadlines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kgents.server")
    async with served(tmp_path, monkeypatch) as (host, port, token):
        kinds = [(token, "head"), (None, "head"), (token, "body"), (None, "body")]
        clients = [slow_client(host, port, t, part) for t, part in kinds for _ in range(20)]
        results = await asyncio.wait_for(asyncio.gather(*clients), 60)
        # the server still answers a well-behaved client at once
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
        writer.close()
    for (who, part), (took, answer) in zip([k for k in kinds for _ in range(20)], results, strict=True):
        deadline = HEAD_S if part == "head" else BODY_S
        assert took < deadline + 3.0, (who is not None, part, took)
        if part == "head":
            assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
        elif who is None:
            assert answer.startswith(b"HTTP/1.1 401"), answer[:80]  # answered at once, then closed at the deadline
    assert not [r for r in caplog.records if "internal error" in r.getMessage()]


async def test_a_client_that_hangs_up_mid_body_is_not_an_internal_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kgents.server")
    async with served(tmp_path, monkeypatch) as (host, port, token):
        for _ in range(5):
            _, writer = await asyncio.open_connection(host, port)
            writer.write(request_head(token, 1000) + b'{"content": "only the start')
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.close()
            await writer.wait_closed()
        await asyncio.sleep(0.3)  # the app sees each disconnect
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("kgents")]
    assert not errors, [r.getMessage() for r in errors]

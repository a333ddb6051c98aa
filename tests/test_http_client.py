"""`kgents.memory.http_client.HttpClient`, the keep-alive HTTP/1.1 client under `RemoteMemory`, against real
loopback servers: uvicorn (what `kgents serve` runs) for the ordinary path, and a bare asyncio server where a test
needs a server that misbehaves on purpose (closes a kept-alive connection, breaks off, never answers)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from kgents.errors import BackendUnavailableError
from kgents.home.discovery import ServerInfo
from kgents.memory.http_client import HttpClient, HttpError
from kgents.memory.remote import RemoteMemory
from kgents.server.run import bind
from tests.helpers import wait_until

TOKEN = "t" * 32


async def echo(request: Request) -> Response:
    """The request as the server saw it, and which connection (client port) carried it."""
    client = request.client
    return JSONResponse(
        {
            "method": request.method,
            "path": request.url.path,
            "body": (await request.body()).decode(),
            "authorization": request.headers.get("authorization"),
            "host": request.headers.get("host"),
            "port": client.port if client else None,
        }
    )


async def chunked(request: Request) -> Response:
    async def parts() -> AsyncIterator[bytes]:
        for part in (b'{"parts": ', b"[1, 2, ", b"3]}"):
            yield part

    return StreamingResponse(parts(), media_type="application/json")


async def slow(request: Request) -> Response:
    await asyncio.sleep(float(request.query_params.get("s", "0.2")))
    return JSONResponse({"slept": True})


APP = Starlette(
    routes=[
        Route("/echo/{rest:path}", echo, methods=["GET", "POST", "PATCH", "DELETE"]),
        Route("/chunked", chunked),
        Route("/slow", slow),
    ]
)


@contextlib.asynccontextmanager
async def uvicorn_server(tls: tuple[Path, Path] | None = None) -> AsyncIterator[str]:
    """uvicorn serving APP on a free loopback port; `tls`: (certificate, key) files for https."""
    sock = bind("127.0.0.1", 0)
    host, port = sock.getsockname()[:2]
    cert, key = (str(tls[0]), str(tls[1])) if tls else (None, None)
    config = uvicorn.Config(
        APP, log_level="warning", http="httptools", lifespan="off", ssl_certfile=cert, ssl_keyfile=key
    )
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[assignment,method-assign]  # a test, not a process
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:

        async def started() -> bool:
            return server.started

        await wait_until(started, what="uvicorn listening")
        yield f"{'https' if tls else 'http'}://{host}:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 5)


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    lengths = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    length = lengths[0] if lengths else 0
    return head + await reader.readexactly(length)


def answer(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)


async def test_requests_carry_method_path_body_and_headers() -> None:
    async with uvicorn_server() as url:
        client = HttpClient(url + "/echo/", {"Authorization": f"Bearer {TOKEN}"}, timeout_s=10)
        try:
            for method, body in (("GET", None), ("POST", b'{"a": "\\u00e9"}'), ("PATCH", b"{}"), ("DELETE", None)):
                response = await client.request(method, "/x/y", body)
                seen = json.loads(response.body)
                assert response.status == 200
                assert seen["method"] == method and seen["path"] == "/echo/x/y"  # the URL's path is a prefix
                assert seen["body"] == (body or b"").decode() and seen["authorization"] == f"Bearer {TOKEN}"
                assert seen["host"] == url.removeprefix("http://")
        finally:
            await client.aclose()
        root = HttpClient(url, {}, timeout_s=10)
        assert (await root.request("GET", "/nowhere")).status == 404
        await root.aclose()


async def test_one_connection_is_kept_alive_and_concurrent_requests_each_get_their_own_answer() -> None:
    async with uvicorn_server() as url:
        client = HttpClient(url, {}, timeout_s=10)
        try:
            ports = {json.loads((await client.request("GET", "/echo/a")).body)["port"] for _ in range(20)}
            assert len(ports) == 1  # sequential requests reuse one connection

            async def ask(i: int) -> dict[str, str]:
                data: dict[str, str] = json.loads((await client.request("POST", f"/echo/{i}", str(i).encode())).body)
                return data

            answers = await asyncio.gather(*(ask(i) for i in range(30)))
            assert [a["path"] for a in answers] == [f"/echo/{i}" for i in range(30)]
            assert [a["body"] for a in answers] == [str(i) for i in range(30)]
        finally:
            await client.aclose()


async def test_a_chunked_answer_is_read_whole() -> None:
    async with uvicorn_server() as url:
        client = HttpClient(url, {}, timeout_s=10)
        try:
            for _ in range(2):  # and the connection stays usable after it
                assert json.loads((await client.request("GET", "/chunked")).body) == {"parts": [1, 2, 3]}
        finally:
            await client.aclose()


async def test_a_kept_alive_connection_the_server_closed_is_replaced() -> None:
    """The server answers one request per connection while claiming keep-alive, then closes it: the next request
    finds the old connection gone and goes out once more on a new one."""
    connections = 0

    async def one_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        writer.write(answer(b'{"n": %d}' % connections))
        await writer.drain()
        writer.close()

    async with raw_server(one_then_close) as url:
        client = HttpClient(url, {}, timeout_s=10)
        try:
            for n in range(1, 4):  # a read: sent again if the close had not been seen yet
                assert json.loads((await client.request("GET", "/")).body) == {"n": n}
                await asyncio.sleep(0)  # the close may or may not have been seen yet: both must work
        finally:
            await client.aclose()
    assert connections == 3


def dropping_the_second(seen: list[tuple[int, bytes]]) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]:
    """A server whose first connection answers one request, then reads the next and closes without a word (as a
    server whose keep-alive ran out does); `seen` records (connection number, body) of every request read."""

    async def drop_the_second(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = len({n for n, _ in seen}) + 1
        seen.append((number, (await read_request(reader)).rsplit(b"\r\n", 1)[-1]))
        writer.write(answer(b'{"connection": %d}' % number))
        await writer.drain()
        if number == 1:
            seen.append((number, (await read_request(reader)).rsplit(b"\r\n", 1)[-1]))
        writer.close()

    return drop_the_second


async def test_a_request_on_a_reused_connection_the_server_dropped_goes_out_once_more() -> None:
    """The first connection answers one request, then takes the next one and closes without a word (as a server
    whose keep-alive ran out does): the request is sent again on a new connection, which answers it."""
    seen: list[tuple[int, bytes]] = []
    async with raw_server(dropping_the_second(seen)) as url:
        client = HttpClient(url, {}, timeout_s=10)
        try:
            assert json.loads((await client.request("POST", "/", b"1")).body) == {"connection": 1}
            answered = await client.request("POST", "/", b"2", idempotent=True)  # a read, as recall is
            assert json.loads(answered.body) == {"connection": 2}
        finally:
            await client.aclose()
    assert seen == [(1, b"1"), (1, b"2"), (2, b"2")]


async def test_a_write_on_a_reused_connection_the_server_dropped_is_not_sent_again() -> None:
    """The server may have carried out a write before it closed: sending it again could store it twice, so the
    caller hears that the outcome is unknown."""
    seen: list[tuple[int, bytes]] = []
    async with raw_server(dropping_the_second(seen)) as url:
        client = HttpClient(url, {}, timeout_s=10)
        try:
            assert json.loads((await client.request("POST", "/", b"1")).body) == {"connection": 1}
            with pytest.raises(HttpError, match="may or may not have been carried out"):
                await client.request("POST", "/", b"2")
        finally:
            await client.aclose()
    assert seen == [(1, b"1"), (1, b"2")]


async def test_a_connection_closed_before_the_answer_on_a_fresh_connection_is_an_error_not_a_retry() -> None:
    requests = 0

    async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        await read_request(reader)
        requests += 1
        writer.close()

    async with raw_server(close_at_once) as url:
        client = HttpClient(url, {}, timeout_s=10)
        with pytest.raises(HttpError, match="without an answer"):
            await client.request("POST", "/", b"{}")
        await client.aclose()
    assert requests == 1  # sent once: a new connection's failure is not a stale keep-alive


async def test_an_answer_broken_off_is_an_error_and_its_connection_is_not_reused() -> None:
    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"only": ')
        await writer.drain()
        writer.close()

    async with raw_server(broken) as url:
        client = HttpClient(url, {}, timeout_s=10)
        with pytest.raises(HttpError, match="mid-answer"):
            await client.request("GET", "/")
        assert client._idle == []
        await client.aclose()


async def test_an_answer_delimited_by_the_end_of_the_connection() -> None:
    async def close_delimited(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n{"whole": true}')
        await writer.drain()
        writer.close()

    async with raw_server(close_delimited) as url:
        client = HttpClient(url, {}, timeout_s=10)
        assert json.loads((await client.request("GET", "/")).body) == {"whole": True}
        assert client._idle == []  # connection: close
        await client.aclose()


async def test_bytes_nobody_asked_for_retire_an_idle_connection() -> None:
    """A server may write to an idle connection (e.g. a 408 before closing it): that connection is out of step,
    so the next request must not read those bytes as its answer."""
    served = 0

    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await read_request(reader)
        served += 1
        writer.write(answer(b'{"n": %d}' % served) + b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        with contextlib.suppress(Exception):
            await read_request(reader)  # a request after the stray answer would be read here: none comes
            served += 100

    async with raw_server(chatty) as url:
        client = HttpClient(url, {}, timeout_s=10)
        try:
            first = json.loads((await client.request("GET", "/")).body)
            await asyncio.sleep(0.05)
            second = json.loads((await client.request("GET", "/")).body)
        finally:
            await client.aclose()
    assert (first, second) == ({"n": 1}, {"n": 2})


async def test_a_server_that_does_not_answer_times_out_and_a_cancelled_request_closes_its_connection() -> None:
    async with uvicorn_server() as url:
        client = HttpClient(url, {}, timeout_s=0.2)
        try:
            with pytest.raises(TimeoutError):
                await client.request("GET", "/slow?s=1")
            assert client._idle == []  # the connection still owed an answer: closed, not pooled
            client.timeout_s = 10
            task = asyncio.create_task(client.request("GET", "/slow?s=1"))
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert client._idle == []
            assert json.loads((await client.request("GET", "/slow?s=0")).body) == {"slept": True}
        finally:
            await client.aclose()


async def test_remote_memory_names_an_unreachable_or_silent_server() -> None:
    silent_server = raw_server(lambda reader, writer: asyncio.sleep(30))
    async with silent_server as url, RemoteMemory(ServerInfo(url, TOKEN), "kent", timeout_s=0.2) as silent:
        with pytest.raises(BackendUnavailableError, match="did not answer in time"):
            await silent.status()
    async with RemoteMemory(ServerInfo(url, TOKEN), "kent") as gone:  # the server above has stopped
        with pytest.raises(BackendUnavailableError, match="unreachable"):
            await gone.status()


async def test_a_closed_client_refuses_requests() -> None:
    client = HttpClient("http://127.0.0.1:9", {}, timeout_s=1)
    await client.aclose()
    with pytest.raises(HttpError, match="closed"):
        await client.request("GET", "/")


def test_only_http_urls() -> None:
    for url in ("ftp://example.org", "http://", "unix:///tmp/x"):
        with pytest.raises(ValueError):
            HttpClient(url, {}, timeout_s=1)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key (cryptography comes with the mcp SDK's pyjwt[crypto])."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kgents test")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


async def test_an_https_server_is_reached_over_verified_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """KGENTS_SERVER_URL may be https:// (a server behind TLS): the certificate is verified against the system's
    authorities (SSL_CERT_FILE names others), so a certificate nobody vouches for is refused."""
    cert, key = self_signed(tmp_path)
    async with uvicorn_server(tls=(cert, key)) as url:
        assert url.startswith("https://")
        untrusted = HttpClient(url, {}, timeout_s=10)
        with pytest.raises(HttpError, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusted.request("GET", "/echo/x")
        await untrusted.aclose()
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        trusted = HttpClient(url, {}, timeout_s=10)
        try:
            for _ in range(2):  # kept alive over TLS too
                seen = json.loads((await trusted.request("POST", "/echo/secure", b"{}")).body)
                assert seen["path"] == "/echo/secure"
            assert len(trusted._idle) == 1
        finally:
            await trusted.aclose()

"""A lean HTTP/1.1 client for `RemoteMemory`: keep-alive connections as asyncio protocols, answers parsed by
httptools (the C parser uvicorn serves with).

Why not httpx: on loopback its per-request cost (request and URL models, h11 in pure Python, anyio cancel scopes)
was ~0.6 ms of a ~0.7 ms round trip, more than the server's own work for a recall (bench/server.py). This client
does only what the memory's wire needs: one request at a time per connection, a JSON (or empty) body, an answer
framed by Content-Length, chunks or the end of the connection, TLS for an https:// server. A connection goes back
to the pool only after a whole answer on a connection the server keeps alive; a cancelled or failed request closes
its connection. A request on a reused connection that the server had closed meanwhile (its keep-alive ran out) is
sent once more on a new connection, as browsers do: the server answered nothing on the old one.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import httptools

MAX_CONNECTIONS = 100
"""Requests in flight at once per client (each on its own connection); more wait for one to come back."""
MAX_IDLE = 8
"""Idle keep-alive connections kept per client."""
IDLE_EXPIRY_S = 60.0
"""An idle connection older than this is closed rather than reused: under `kgents serve`'s keep-alive (65 s), so
a reuse rarely meets a connection the server is closing (and one that does is sent again, see above)."""


class HttpError(Exception):
    """The server could not be reached, or broke the connection before a whole answer. `sent`: whether the
    request may have reached the server (False: it surely did not, so nothing was carried out)."""

    def __init__(self, message: str, *, sent: bool = True) -> None:
        super().__init__(message)
        self.sent = sent


class HttpTimeout(HttpError, TimeoutError):
    """No whole answer within the client's deadline (`sent` as for HttpError)."""


IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
"""Methods a client may send again after a connection ended without an answer (RFC 9110, 9.2.2)."""


class _ClosedBeforeAnswer(HttpError):
    """The connection ended before any byte of the answer: safe to send again on a new connection."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes
    resent: bool = False
    """The answer of a second sending: the first went out on a connection that closed before any answer, so
    it may have been carried out too (for an idempotent request that is harmless, but an answer "not done" then
    says nothing of the first)."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection; its data goes straight into the parser of the answer awaited."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.open = False
        self.idle_since = time.monotonic()
        self._parser: httptools.HttpResponseParser | None = None
        self._waiter: asyncio.Future[HttpResponse] | None = None
        self._body: list[bytes] = []
        self._received = False
        self._headers_done = False
        self._framed = False  # Content-Length or chunked: the answer's end is in it, not at the connection's
        self._keep_alive = False  # read when the answer completes (httptools forgets it right after)

    # -- asyncio.Protocol ------------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.open = True
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self._parser is None or self._waiter is None or self._waiter.done():
            self.close()  # bytes nobody asked for (e.g. a 408 before an idle close): the stream is out of step
            return
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpError(f"the server's answer is not valid HTTP: {exc}"))

    def eof_received(self) -> bool:
        self._ended(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self._ended(exc)

    # -- httptools callbacks ---------------------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self._waiter is not None and self._waiter.done():
            self.close()  # a second answer right behind the one asked for: the stream is out of step

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self._framed = True

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._keep_alive = self._parser is not None and self._parser.should_keep_alive()
        self._finish()

    # -- one exchange ----------------------------------------------------------------------------------------------
    def usable(self, now: float) -> bool:
        return self.open and now - self.idle_since < IDLE_EXPIRY_S

    async def exchange(self, message: bytes) -> tuple[HttpResponse, bool]:
        """Write `message` and await its answer; also whether the connection may carry another request."""
        assert self.transport is not None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter = asyncio.get_running_loop().create_future()
        self._body, self._received, self._headers_done, self._framed, self._keep_alive = [], False, False, False, False
        self.transport.write(message)
        try:
            response = await self._waiter
        except BaseException:
            self.close()
            raise
        self._parser = None
        return response, self.open and self._keep_alive

    def _finish(self) -> None:
        if self._waiter is not None and not self._waiter.done() and self._parser is not None:
            self._waiter.set_result(HttpResponse(self._parser.get_status_code(), b"".join(self._body)))

    def _fail(self, error: HttpError) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)
        self.close()

    def _ended(self, exc: Exception | None) -> None:
        self.open = False
        if self._waiter is None or self._waiter.done():
            return
        if self._headers_done and not self._framed:
            self._finish()  # an answer delimited by the end of the connection
        elif not self._received:
            self._fail(_ClosedBeforeAnswer(f"the server closed the connection without an answer ({exc or 'EOF'})"))
        else:
            self._fail(HttpError(f"the server closed the connection mid-answer ({exc or 'EOF'})"))

    def close(self) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.close()


class HttpClient:
    """Requests to one server (`url`: http:// or https://, with an optional path prefix), each carrying
    `headers`; `timeout_s` bounds a whole request, from connecting to the last byte of the answer."""

    def __init__(self, url: str, headers: Mapping[str, str], *, timeout_s: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        default_port = 443 if self.tls else 80
        self.port = parts.port or default_port
        self.prefix = parts.path.rstrip("/")
        self.timeout_s = timeout_s
        shown = f"[{self.host}]" if ":" in self.host else self.host
        lines = [f"Host: {shown}" if self.port == default_port else f"Host: {shown}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self._headers = ("\r\n".join(lines) + "\r\n").encode("latin-1")
        self._tls_context = ssl.create_default_context() if self.tls else None  # CA certificates loaded once
        self._idle: list[_Connection] = []
        self._slots: asyncio.Semaphore | None = None
        self._closed = False

    async def request(
        self, method: str, path: str, body: bytes | None = None, *, idempotent: bool | None = None
    ) -> HttpResponse:
        """Send one request and read its whole answer: HttpError when the server cannot be reached or breaks off,
        TimeoutError after `timeout_s`. A reused connection that ends before any answer is replaced and the request
        sent again only when it is `idempotent` (by default: by its method), since the server may have acted on it
        before it closed; otherwise HttpError says the outcome is unknown."""
        if self._closed:
            raise HttpError("the client is closed")
        if self._slots is None:
            self._slots = asyncio.Semaphore(MAX_CONNECTIONS)
        head = f"{method} {self.prefix}{path} HTTP/1.1\r\n".encode("latin-1") + self._headers
        if body is not None:
            head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        message = head + b"\r\n" + (body or b"")
        sent = False
        try:
            async with self._slots, asyncio.timeout(self.timeout_s):
                connection = self._take_idle()
                if connection is not None:
                    try:
                        sent = True
                        return await self._exchange(connection, message)
                    except _ClosedBeforeAnswer:
                        if not (method in IDEMPOTENT_METHODS if idempotent is None else idempotent):
                            raise HttpError(
                                "the server closed the connection before answering; the request may or may not"
                                " have been carried out"
                            ) from None
                        # the server had closed it (idle, or it restarted): once more on a new connection
                fresh = await self._connect(resending=sent)
                resent, sent = sent, True
                response = await self._exchange(fresh, message)
                return replace(response, resent=True) if resent else response
        except TimeoutError as exc:
            if isinstance(exc, HttpError):
                raise
            raise HttpTimeout(f"no answer within {self.timeout_s:g} s", sent=sent) from None

    def _take_idle(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if connection.usable(now):
                return connection
            connection.close()
        return None

    async def _connect(self, *, resending: bool = False) -> _Connection:
        """A new connection. `resending`: the request went out once on a connection that closed before its answer,
        so a failure now leaves its outcome unknown (the first one may have been carried out)."""
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(_Connection, self.host, self.port, ssl=self._tls_context)
        except (OSError, ssl.SSLError) as exc:
            if resending:
                raise HttpError(
                    f"the server closed the connection before answering and cannot be reached again ({exc}); the"
                    " request may or may not have been carried out"
                ) from None
            raise HttpError(f"cannot connect to {self.host}:{self.port}: {exc}", sent=False) from None
        return connection

    async def _exchange(self, connection: _Connection, message: bytes) -> HttpResponse:
        response, keep = await connection.exchange(message)
        if keep and not self._closed and len(self._idle) < MAX_IDLE:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()
        return response

    async def aclose(self) -> None:
        """Close the idle connections (a request still in flight closes its own when it ends)."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        if idle:
            await asyncio.sleep(0)  # let the transports finish closing before a caller closes the loop

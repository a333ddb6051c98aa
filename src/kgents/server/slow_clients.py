"""Deadlines for reading a request, so slow clients cannot hold the server's connections open for ever.

uvicorn times out only idle keep-alive connections; a client that sends its request head or body a byte at a time
(a slow-loris), with a token or without one, kept its connection open as long as it liked (80 such connections
stayed more than 60 s). This protocol is uvicorn's httptools one with two deadlines: the request head must arrive
whole within `header_timeout_s` of the connection being made or of the request's first byte (answered `408` and
closed), and its body within `body_timeout_s` of the head (the connection is closed; the app sees the client leave,
which it does not log as an error). A request whose answer went out early (a 401 before the body) still has its
body deadline, so the rest of that body cannot keep the connection either.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIMEOUT_S = 10.0
"""Time to send a request head (request line and headers) whole."""
BODY_TIMEOUT_S = 30.0
"""Time to send a request body whole once its head arrived: the largest body (8 MiB) at ~280 KB/s."""
REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a head deadline and a body deadline (`with_timeouts` makes a variant)."""

    header_timeout_s = HEADER_TIMEOUT_S
    body_timeout_s = BODY_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    @classmethod
    def with_timeouts(cls, header_timeout_s: float, body_timeout_s: float) -> type[GuardedHttpToolsProtocol]:
        attributes = {"header_timeout_s": header_timeout_s, "body_timeout_s": body_timeout_s}
        return type("GuardedHttpToolsProtocol", (cls,), attributes)

    def _arm(self, seconds: float, expire: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    # -- the connection and the parser's events ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout_s, self._head_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(self.header_timeout_s, self._head_too_slow)

    def on_headers_complete(self) -> None:
        self._arm(self.body_timeout_s, self._body_too_slow)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    # -- what a missed deadline does -----------------------------------------------------------------------------
    def _head_too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:  # no answer of an earlier request under way
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()

    def _body_too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()  # the app, if still reading, sees the client leave

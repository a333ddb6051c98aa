"""Reading request bodies and writing errors, for every route of `kgents serve`: a body over the limit is refused
before it is read whole, one that is not JSON is invalid, and every failure is JSON `{"error": {"code",
"message"}}` with the stable code of its `kgents.errors` class (`kgents.memory.wire.ERRORS`)."""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from kgents.errors import TooLargeError, ValidationError
from kgents.memory import wire
from kgents.server.failures import as_known, hung_up

log = logging.getLogger("kgents.server")

MAX_BODY_BYTES = 8 * 1024 * 1024
"""The largest request body read (a batch of entries at their limits fits many times): a larger one is refused
from its Content-Length, or as soon as the stream passes the limit, never read whole first."""


def error_response(error: BaseException, *, writing: bool = False) -> Response:
    """The JSON error for `error` (`writing`: the request was a write, so a lost connection leaves it in doubt)."""
    if hung_up(error):
        log.debug("the client hung up before its request was read")
        return Response(status_code=400)  # nobody reads it
    error = as_known(error, writing=writing)
    code, status = wire.error_code(error)
    if code == wire.INTERNAL[0]:
        log.error("internal error", exc_info=error)
        message = f"internal error ({type(error).__name__}); the server log has the details"
    else:
        message = str(error)
    return JSONResponse(wire.error_body(code, message), status_code=status)


async def read_json(request: Request) -> Any:
    raw = await read_body(request)
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("the request body is not valid JSON") from None
    except RecursionError:  # arrays or objects nested thousands deep: the parser gives up, the body is refused
        raise ValidationError("the request body is nested too deeply to be a request of this API") from None


def too_large(limit: int = MAX_BODY_BYTES) -> TooLargeError:
    return TooLargeError(f"the request body is over the limit of {limit:,} bytes")


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, refused (413) once the stream passes `limit` (a declared length over it: `DeclaredBodyLimit`)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


class DeclaredBodyLimit:
    """Pure ASGI middleware: a request whose Content-Length is over MAX_BODY_BYTES is answered 413 before any of
    it is read, on every path (MCP's too, whose SDK would read it whole)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            declared = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
            if declared.isdigit() and int(declared) > self.limit:
                await error_response(too_large(self.limit))(scope, receive, send)
                return
        await self.app(scope, receive, send)

"""Who may do what on `kgents serve`: the operator token, persona tokens, and the one rule that judges a request.

Every request but `/livez` carries `Authorization: Bearer <token>`. The operator token (KGENTS_SERVER_TOKEN, or the
home's `server.token`) is compared in constant time and may do everything; any other token must be an active
persona token (`kgents.server.tokens`), which opens only its own persona, for reading and, unless it is read-only,
writing. What each route needs is declared beside it in `kgents.server.routes` as a `Need`; `authorize` is the one
judge. The grant of the request in flight is in `current_grant` (MCP's tools read it to find their persona).
"""

from __future__ import annotations

import contextvars
import enum
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from kgents.errors import PermissionDeniedError
from kgents.memory import wire

OPEN_PATHS = frozenset({"/livez"})
"""The only path answered without a token (a liveness probe must not need a secret)."""
GRANT_KEY = "kgents.grant"
"""Where the request's `Grant` is kept in the ASGI scope."""


class Need(enum.Enum):
    """What a route asks of the token."""

    ANY = "any"
    """Any valid token (readiness, who am I, MCP: the tools then judge)."""
    READ = "read"
    """Read the path's persona."""
    WRITE = "write"
    """Change the path's persona (a read-only token may not)."""
    OPERATOR = "operator"
    """Operator-wide: every persona at once (health, metrics, `/v1/admin/...`)."""


@dataclass(frozen=True, slots=True)
class Grant:
    """What the request's token allows: everything (the operator), or one persona, maybe only to read."""

    persona: str | None = None
    """None: the operator token."""
    read_only: bool = False
    token_id: str | None = None

    @property
    def operator(self) -> bool:
        return self.persona is None

    def to_dict(self) -> dict[str, Any]:
        if self.operator:
            return {"scope": "operator"}
        return {"scope": "persona", "persona": self.persona, "read_only": self.read_only, "token_id": self.token_id}


OPERATOR = Grant()

current_grant: contextvars.ContextVar[Grant | None] = contextvars.ContextVar("kgents_grant", default=None)
"""The grant of the HTTP request being served (None outside one: stdio MCP, tests in memory)."""


def authorize(grant: Grant, need: Need, persona: str | None = None) -> None:
    """Raise PermissionDeniedError unless `grant` allows `need` (on `persona`, for READ and WRITE)."""
    if grant.operator or need is Need.ANY:
        return
    if need is Need.OPERATOR:
        raise PermissionDeniedError(
            "this is an operator action: it needs the server's operator token, not a persona token"
        )
    if persona != grant.persona:
        raise PermissionDeniedError(f"this token is persona {grant.persona}'s; it cannot reach persona {persona}")
    if need is Need.WRITE and grant.read_only:
        raise PermissionDeniedError(f"this token of persona {grant.persona} is read-only")


def grant_of(scope: Scope) -> Grant:
    found = scope.get(GRANT_KEY)
    if not isinstance(found, Grant):  # the middleware always sets it; anything else is a wiring fault
        raise PermissionDeniedError("no credentials were checked for this request")
    return found


PersonaTokens = Callable[[str], Awaitable[Grant | None]]
"""Looks a persona token up: its grant, or None when it opens nothing."""


class BearerAuth:
    """Pure ASGI middleware: every HTTP request but OPEN_PATHS carries the operator token or an active persona
    token (401 otherwise); the grant goes into the scope and `current_grant` for the routes to judge."""

    def __init__(self, app: ASGIApp, token: str, persona_tokens: PersonaTokens | None = None) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()
        self.persona_tokens = persona_tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        grant = await self._grant(next((v for k, v in scope["headers"] if k == b"authorization"), b""))
        if grant is None:
            body = wire.error_body(wire.UNAUTHORIZED[0], "a valid bearer token is required")
            await JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
            return
        scope[GRANT_KEY] = grant
        reset = current_grant.set(grant)
        try:
            await self.app(scope, receive, send)
        finally:
            current_grant.reset(reset)

    async def _grant(self, given: bytes) -> Grant | None:
        if hmac.compare_digest(given, self.expected):
            return OPERATOR
        if self.persona_tokens is None or not given.startswith(b"Bearer "):
            return None
        try:
            token = given[len(b"Bearer ") :].decode("ascii")
        except UnicodeDecodeError:
            return None
        return await self.persona_tokens(token)


WRITE_METHODS = frozenset(
    {
        "remember",
        "remember_many",
        "update",
        "nurture",
        "reassess",
        "compost",
        "forget",
        "set_mode",
        "nudge",
        "record_interaction",
    }
)
"""The `MemoryAPI` methods that change the memory (what a read-only token may not call)."""


class ReadOnlyMemory:
    """A `MemoryAPI` whose writes are refused (a read-only token's memory for MCP); reads pass through."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name in WRITE_METHODS:
            raise PermissionDeniedError(f"this token of persona {self._inner.persona} is read-only")
        return getattr(self._inner, name)

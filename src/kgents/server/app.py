"""The ASGI app of `kgents serve`: a JSON HTTP API over `MemoryAPI`, one route per method, the persona in the path.

Every request but `/livez` carries `Authorization: Bearer <token>`: the operator token, or a persona token that
opens only its own persona (`kgents.server.auth`; 401 without a valid one, 403 for what it does not allow). Each
route declares what it needs (`Need`) and the shape of its body beside it (`kgents.server.routes`), and
`/openapi.json` describes them all from that one table (`kgents.server.openapi`). Operator-wide routes live under
`/v1/admin/`. Errors are JSON `{"error": {"code", "message"}}` with a stable code per `kgents.errors` class
(`kgents.memory.wire.ERRORS`), so `RemoteMemory` raises what the in-process memory would have raised.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from kgents.memory import wire
from kgents.server import openapi
from kgents.server.auth import BearerAuth
from kgents.server.bodies import DeclaredBodyLimit, error_response
from kgents.server.routes import (
    LIVEZ,
    PERSONA,
    RouteDef,
    ServedHomeAPI,
    Work,
    open_endpoint,
    persona_endpoint,
    persona_routes,
    server_endpoint,
    server_routes,
)


def described(home: ServedHomeAPI) -> dict[str, Any]:
    """The OpenAPI document of every route `build_app` serves."""
    unused: Any = None
    routes: list[tuple[str, RouteDef[Any]]] = [(LIVEZ.path, LIVEZ)]
    routes += [(r.path, r) for r in server_routes(home, unused)]
    routes += openapi.persona_paths(persona_routes(home))
    return openapi.document(routes)


def api_routes(home: ServedHomeAPI) -> list[BaseRoute]:
    """/livez, the server's routes and the persona routes, each behind its need."""
    document = described(home)

    async def served_document(request: Request, body: dict[str, Any]) -> Response:
        return JSONResponse(document)

    docs: Work = served_document
    routes: list[BaseRoute] = [Route(LIVEZ.path, open_endpoint(LIVEZ), methods=[LIVEZ.method])]
    routes += [Route(r.path, server_endpoint(r), methods=[r.method]) for r in server_routes(home, docs)]
    routes += [Route(f"{PERSONA}{r.path}", persona_endpoint(home, r), methods=[r.method]) for r in persona_routes(home)]
    return routes


def mounted(sub_apps: Mapping[str, ASGIApp]) -> list[BaseRoute]:
    """Each of `sub_apps` at its path: the path itself answered as is (no redirect to path/), and below it."""
    routes: list[BaseRoute] = []
    for path, sub in sub_apps.items():
        routes += [Route(path, endpoint=sub), Mount(path, app=sub)]
    return routes


def lifespan_of(sub_apps: Mapping[str, ASGIApp]) -> Any:
    """The app's lifespan: a mounted app's own (the MCP session manager) runs with ours."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for sub in sub_apps.values():
                context = getattr(getattr(sub, "router", None), "lifespan_context", None)
                if context is not None:
                    await stack.enter_async_context(context(sub))
            yield

    return lifespan


async def http_error(request: Request, exc: Exception) -> Response:
    """404 and 405 of a path or method the API does not have, as JSON errors."""
    status = getattr(exc, "status_code", 500)
    code = "not_found" if status == 404 else "method_not_allowed" if status == 405 else "invalid"
    return JSONResponse(wire.error_body(code, f"{request.method} {request.url.path}: {exc}"), status_code=status)


async def internal_error(request: Request, exc: Exception) -> Response:
    return error_response(exc)


def build_app(home: ServedHomeAPI, token: str, *, mounts: Mapping[str, ASGIApp] | None = None) -> ASGIApp:
    """The whole app: health, the memory API under /v1/personas/{persona}, operator routes under /v1/admin, its
    OpenAPI document at /openapi.json and `mounts` (MCP), all behind the bearer token (operator or persona) but
    /livez."""
    sub_apps = dict(mounts or {})
    handlers = {404: http_error, 405: http_error, Exception: internal_error}
    routes = [*api_routes(home), *mounted(sub_apps)]
    app = Starlette(routes=routes, lifespan=lifespan_of(sub_apps), exception_handlers=handlers)
    return BearerAuth(DeclaredBodyLimit(app), token, home.persona_grant)

"""The ASGI app of `kgents serve`: a JSON HTTP API over `MemoryAPI`, one route per method, the persona in the path.

Every request but `/livez` carries `Authorization: Bearer <token>`: the operator token, or a persona token that
opens only its own persona (`kgents.server.auth`; 401 without a valid one, 403 for what it does not allow). Each
route declares what it needs (`Need`) beside it. Operator-wide routes live under `/v1/admin/`. Errors are JSON
`{"error": {"code", "message"}}` with a stable code per `kgents.errors` class (`kgents.memory.wire.ERRORS`), so
`RemoteMemory` raises what the in-process memory would have raised.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from kgents.config import check_persona
from kgents.errors import ConfigError, TooLargeError, ValidationError
from kgents.health.model import TriadHealth
from kgents.health.prometheus import CONTENT_TYPE as PROMETHEUS_CONTENT_TYPE
from kgents.health.prometheus import render_prometheus
from kgents.memory import wire
from kgents.memory.api import MemoryAPI
from kgents.memory.forget import ForgetReport
from kgents.server.auth import OPEN_PATHS as OPEN_PATHS
from kgents.server.auth import BearerAuth, Grant, Need, authorize, grant_of
from kgents.server.failures import as_known, hung_up

log = logging.getLogger("kgents.server")

MAX_LIMIT = 1000


class Backend(Protocol):
    """What the app serves: one memory per persona, and a readiness check of the stores under them."""

    async def memory(self, persona: str) -> MemoryAPI: ...

    async def ready(self) -> dict[str, Any]: ...

    async def operator(self, action: str, persona: str | None, options: Mapping[str, Any]) -> dict[str, Any]:
        """Operator-wide synapse actions (`coherency`, `index`, `reconcile`, `reindex` with an `embedder` option)
        answered by the index's owner; sample ids in the answer are only `persona`'s (None: the server's). `dream`
        (a `dry_run` option): the persona's dream, run by the index's owner."""
        ...

    async def forget(self, persona: str, *, purge_history: bool) -> ForgetReport:
        """Remove the persona everywhere it lives."""
        ...

    async def health(self) -> TriadHealth:
        """The triad's health as this server serves it: the last figures, with their age, never a full scan."""
        ...

    async def persona_grant(self, token: str) -> Grant | None:
        """The grant of a persona token (None: it opens nothing)."""
        ...


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


MAX_BODY_BYTES = 8 * 1024 * 1024
"""The largest request body read (a batch of entries at their limits fits many times): a larger one is refused
from its Content-Length, or as soon as the stream passes the limit, never read whole first."""


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


Handler = Callable[[MemoryAPI, Request], Awaitable[Response]]


Endpoint = Callable[[Request], Awaitable[Response]]


def persona_route(backend: Backend, handler: Handler, need: Need) -> Endpoint:
    """A route over the path's persona's memory, allowed by `need`, with errors mapped to their codes."""

    async def endpoint(request: Request) -> Response:
        try:
            persona = path_persona(request)
            authorize(grant_of(request.scope), need, persona)
            return await handler(await backend.memory(persona), request)
        except Exception as exc:
            return error_response(exc, writing=need is Need.WRITE and handler not in (recall, list_entries))

    return endpoint


def guarded(need: Need, work: Endpoint) -> Endpoint:
    """A route that is not one persona's (health, admin), allowed by `need`, with errors mapped to their codes."""

    async def endpoint(request: Request) -> Response:
        try:
            authorize(grant_of(request.scope), need)
            return await work(request)
        except Exception as exc:
            return error_response(exc, writing=need is Need.OPERATOR and request.method != "GET")

    return endpoint


def path_persona(request: Request) -> str:
    return checked_persona(request.path_params["persona"])


def checked_persona(persona: str) -> str:
    try:
        return check_persona(persona)
    except ConfigError as exc:
        raise ValidationError(str(exc)) from None


def ref_of(request: Request) -> str:
    return str(request.path_params["ref"])


async def remember(memory: MemoryAPI, request: Request) -> Response:
    item = wire.item_from_dict(await read_json(request))
    entry = await memory.remember(
        item.content,
        type=item.type,
        tags=item.tags,
        confidence=item.confidence,
        observed_at=item.observed_at,
        evidence=item.evidence,
        affinities=item.affinities,
        entry_id=item.entry_id,
    )
    return JSONResponse(entry.to_dict(), status_code=201)


async def remember_many(memory: MemoryAPI, request: Request) -> Response:
    body = wire.fields_of(await read_json(request), frozenset({"items"}), "the batch")
    items = [wire.item_from_dict(x, f"item {i}") for i, x in enumerate(wire.as_list(body.get("items"), "items"))]
    entries = await memory.remember_many(items)
    return JSONResponse({"entries": [e.to_dict() for e in entries]}, status_code=201)


async def recall(memory: MemoryAPI, request: Request) -> Response:
    fields = frozenset({"query", "limit", "filters", "min_score", "explain", "mode", "asked_at"})
    body = wire.fields_of(await read_json(request), fields, "the recall")
    if "query" not in body:
        raise ValidationError("the recall has no query")
    min_score = body.get("min_score")
    explain = body.get("explain", False)
    if not isinstance(explain, bool):
        raise ValidationError("explain must be true or false")
    hits = await memory.recall(
        wire.as_str(body["query"], "query"),
        limit=wire.as_int(body.get("limit", 10), "limit", 1, MAX_LIMIT),
        filters=wire.filter_from_dict(body.get("filters")),
        min_score=None if min_score is None else wire.as_number(min_score, "min_score"),
        explain=explain,
        mode=wire.as_str(body.get("mode", "hybrid"), "mode"),
        asked_at=wire.as_time(body.get("asked_at"), "asked_at"),
    )
    return JSONResponse({"hits": [h.to_dict() for h in hits]})


async def list_entries(memory: MemoryAPI, request: Request) -> Response:
    fields = frozenset({"filters", "order_by", "limit", "offset"})
    body = wire.fields_of(await read_json(request), fields, "the list")
    entries = await memory.list(
        wire.filter_from_dict(body.get("filters")),
        order_by=wire.as_str(body.get("order_by", "confidence"), "order_by"),
        limit=wire.as_int(body.get("limit", 100), "limit", 1, 100_000),
        offset=wire.as_int(body.get("offset", 0), "offset", 0, 2**62),
    )
    return JSONResponse({"entries": [e.to_dict() for e in entries]})


async def get(memory: MemoryAPI, request: Request) -> Response:
    return JSONResponse((await memory.get(ref_of(request))).to_dict())


async def update(memory: MemoryAPI, request: Request) -> Response:
    fields = await read_json(request)  # the memory itself names any field it cannot update
    if not isinstance(fields, dict):
        raise ValidationError("the update must be a JSON object")
    return JSONResponse((await memory.update(ref_of(request), **fields)).to_dict())


async def nurture(memory: MemoryAPI, request: Request) -> Response:
    body = wire.fields_of(await read_json(request), frozenset({"evidence", "delta", "confidence"}), "the nurture")
    evidence, confidence = body.get("evidence"), body.get("confidence")
    entry = await memory.nurture(
        ref_of(request),
        evidence=None if evidence is None else wire.as_str(evidence, "evidence"),
        delta=wire.as_number(body.get("delta", 0.05), "delta"),
        confidence=None if confidence is None else wire.as_number(confidence, "confidence"),
    )
    return JSONResponse(entry.to_dict())


async def reassess(memory: MemoryAPI, request: Request) -> Response:
    body = wire.fields_of(await read_json(request), frozenset({"confidence", "evidence"}), "the reassessment")
    evidence = body.get("evidence")
    entry = await memory.reassess(
        ref_of(request),
        confidence=wire.as_number(body.get("confidence"), "confidence"),
        evidence=None if evidence is None else wire.as_str(evidence, "evidence"),
    )
    return JSONResponse(entry.to_dict())


async def compost(memory: MemoryAPI, request: Request) -> Response:
    body = wire.fields_of(await read_json(request), frozenset({"successor", "evidence"}), "the compost")
    successor, evidence = body.get("successor"), body.get("evidence")
    entry = await memory.compost(
        ref_of(request),
        successor=None if successor is None else wire.as_str(successor, "successor"),
        evidence=None if evidence is None else wire.as_str(evidence, "evidence"),
    )
    return JSONResponse(entry.to_dict())


async def forget(memory: MemoryAPI, request: Request) -> Response:
    await memory.forget(ref_of(request))
    return Response(status_code=204)


async def history(memory: MemoryAPI, request: Request) -> Response:
    return JSONResponse({"records": [r.to_dict() for r in await memory.history(ref_of(request))]})


async def soul(memory: MemoryAPI, request: Request) -> Response:
    return JSONResponse((await memory.soul()).to_dict())


async def set_mode(memory: MemoryAPI, request: Request) -> Response:
    body = wire.fields_of(await read_json(request), frozenset({"mode"}), "the soul mode")
    return JSONResponse((await memory.set_mode(wire.as_str(body.get("mode"), "mode"))).to_dict())


async def nudge(memory: MemoryAPI, request: Request) -> Response:
    body = wire.fields_of(await read_json(request), frozenset({"shifts"}), "the nudge")
    shifts = body.get("shifts")
    if not isinstance(shifts, dict):
        raise ValidationError("shifts must be an object of axis → delta")
    return JSONResponse((await memory.nudge({str(k): wire.as_number(v, k) for k, v in shifts.items()})).to_dict())


async def record_interaction(memory: MemoryAPI, request: Request) -> Response:
    body = wire.fields_of(await read_json(request), frozenset({"tokens"}), "the interaction")
    tokens = wire.as_int(body.get("tokens", 0), "tokens", 0, 10_000_000)
    return JSONResponse((await memory.record_interaction(tokens)).to_dict())


async def status(memory: MemoryAPI, request: Request) -> Response:
    found = await memory.status()
    return JSONResponse(found if grant_of(request.scope).operator else wire.persona_status(found))


def operator(backend: Backend, action: str) -> Endpoint:
    """/v1/admin/synapse/{action}[?persona=P]: operator-wide synapse work; sample ids in the answer are P's."""

    async def endpoint(request: Request) -> Response:
        options = await read_json(request) if request.method == "POST" else {}
        if request.method == "GET" and request.query_params.get("full") in ("1", "true"):
            options = {"full": True}
        if not isinstance(options, dict):
            raise ValidationError("the request body must be a JSON object")
        persona = request.query_params.get("persona") or None
        sample = None if persona is None else checked_persona(persona)
        return JSONResponse(await backend.operator(action, sample, options))

    return endpoint


def dream(backend: Backend) -> Handler:
    """POST /v1/personas/{persona}/dream: the persona's dream, run by the index's owner (`dry_run`)."""

    async def handler(memory: MemoryAPI, request: Request) -> Response:
        options = await read_json(request)
        if not isinstance(options, dict):
            raise ValidationError("the request body must be a JSON object")
        return JSONResponse(await backend.operator("dream", memory.persona, options))

    return handler


def build_index(backend: Backend) -> Handler:
    """POST /v1/personas/{persona}/index/build: wait up to `wait` s for the index's graph, first building if `now`."""

    async def handler(memory: MemoryAPI, request: Request) -> Response:
        body = wire.fields_of(await read_json(request), frozenset({"now", "wait"}), "the build request")
        now = body.get("now", True)
        if not isinstance(now, bool):
            raise ValidationError("now must be true or false")
        wait = wire.as_number(body.get("wait", wire.BUILD_WAIT_S), "wait")
        if not 0 <= wait <= wire.BUILD_WAIT_S:
            raise ValidationError(f"wait must be in [0, {wire.BUILD_WAIT_S:g}] seconds")
        built = await backend.operator("build", memory.persona, {"now": now, "wait": wait})
        if not grant_of(request.scope).operator:
            built = {"graph": wire.persona_graph(built["graph"])}
        return JSONResponse(built)

    return handler


def backend_persona_routes(backend: Backend) -> list[tuple[str, Handler, str, Need]]:
    """The persona routes that need the backend itself (beside PERSONA_ROUTES)."""
    return [("/dream", dream(backend), "POST", Need.WRITE), ("/index/build", build_index(backend), "POST", Need.WRITE)]


def forget_persona(backend: Backend) -> Endpoint:
    """DELETE /v1/admin/personas/{persona}[?purge_history=true]: the persona removed everywhere it lives."""

    async def endpoint(request: Request) -> Response:
        persona = path_persona(request)
        purge = request.query_params.get("purge_history", "false")
        if purge not in ("true", "false"):
            raise ValidationError("purge_history must be true or false")
        report = await backend.forget(persona, purge_history=purge == "true")
        return JSONResponse(report.to_dict())

    return endpoint


PERSONA_ROUTES: tuple[tuple[str, Handler, str, Need], ...] = (
    ("/memories", remember, "POST", Need.WRITE),
    ("/memories/batch", remember_many, "POST", Need.WRITE),
    ("/recall", recall, "POST", Need.READ),
    ("/list", list_entries, "POST", Need.READ),
    ("/memories/{ref}", get, "GET", Need.READ),
    ("/memories/{ref}", update, "PATCH", Need.WRITE),
    ("/memories/{ref}", forget, "DELETE", Need.WRITE),
    ("/memories/{ref}/nurture", nurture, "POST", Need.WRITE),
    ("/memories/{ref}/history", history, "GET", Need.READ),
    ("/memories/{ref}/reassess", reassess, "POST", Need.WRITE),
    ("/memories/{ref}/compost", compost, "POST", Need.WRITE),
    ("/soul", soul, "GET", Need.READ),
    ("/soul/mode", set_mode, "PUT", Need.WRITE),
    ("/soul/nudge", nudge, "POST", Need.WRITE),
    ("/soul/interactions", record_interaction, "POST", Need.WRITE),
    ("/status", status, "GET", Need.READ),
)
"""Under /v1/personas/{persona}: path, handler, method, what the token needs."""
ADMIN = "/v1/admin"
MCP_PATH = "/mcp"


def server_routes(backend: Backend) -> list[tuple[str, Endpoint, str, Need]]:
    """Every route that is not one persona's: path, endpoint, method, what the token needs."""

    async def readyz(request: Request) -> Response:
        try:
            return JSONResponse({"status": "ready", **await backend.ready()})
        except Exception as exc:
            code, _ = wire.error_code(exc)
            return JSONResponse({"status": "unready", "code": code, "error": str(exc)}, status_code=503)

    async def whoami(request: Request) -> Response:
        return JSONResponse(grant_of(request.scope).to_dict())

    async def health(request: Request) -> Response:
        return JSONResponse((await backend.health()).to_dict())

    async def metrics(request: Request) -> Response:
        return Response(render_prometheus(await backend.health()), media_type=PROMETHEUS_CONTENT_TYPE)

    return [
        ("/readyz", readyz, "GET", Need.ANY),
        ("/v1/whoami", whoami, "GET", Need.ANY),
        ("/v1/health", health, "GET", Need.OPERATOR),
        ("/metrics", metrics, "GET", Need.OPERATOR),
        (f"{ADMIN}/synapse/coherency", operator(backend, "coherency"), "GET", Need.OPERATOR),
        (f"{ADMIN}/synapse/index", operator(backend, "index"), "GET", Need.OPERATOR),
        (f"{ADMIN}/synapse/reconcile", operator(backend, "reconcile"), "POST", Need.OPERATOR),
        (f"{ADMIN}/synapse/reindex", operator(backend, "reindex"), "POST", Need.OPERATOR),
        (f"{ADMIN}/personas/{{persona}}", forget_persona(backend), "DELETE", Need.OPERATOR),
    ]


def route_needs(backend: Backend) -> list[tuple[str, str, Need]]:
    """(method, path, need) of every route `build_app` serves (with /mcp: any token; its tools judge), for the
    tests that walk them all."""
    found = [(method, path, need) for path, _, method, need in server_routes(backend)]
    persona_routes = [*PERSONA_ROUTES, *backend_persona_routes(backend)]
    found += [(method, f"/v1/personas/{{persona}}{path}", need) for path, _, method, need in persona_routes]
    return [*found, ("POST", MCP_PATH, Need.ANY)]


def build_app(backend: Backend, token: str, *, mounts: Mapping[str, ASGIApp] | None = None) -> ASGIApp:
    """The whole app: health, the memory API under /v1/personas/{persona}, operator routes under /v1/admin, and
    `mounts` (MCP), all behind the bearer token (operator or persona) but /livez."""

    async def livez(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    routes: list[BaseRoute] = [Route("/livez", livez, methods=["GET"])]
    routes += [
        Route(path, guarded(need, endpoint), methods=[method])
        for path, endpoint, method, need in server_routes(backend)
    ]
    routes += [
        Route(f"/v1/personas/{{persona}}{path}", persona_route(backend, handler, need), methods=[method])
        for path, handler, method, need in [*PERSONA_ROUTES, *backend_persona_routes(backend)]
    ]
    sub_apps = dict(mounts or {})
    for path, sub in sub_apps.items():  # the path itself answered as is (no redirect to path/), and below it
        routes += [Route(path, endpoint=sub), Mount(path, app=sub)]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for sub in sub_apps.values():  # a mounted app's own lifespan (the MCP session manager) runs with ours
                context = getattr(getattr(sub, "router", None), "lifespan_context", None)
                if context is not None:
                    await stack.enter_async_context(context(sub))
            yield

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        code = "not_found" if status == 404 else "method_not_allowed" if status == 405 else "invalid"
        return JSONResponse(wire.error_body(code, f"{request.method} {request.url.path}: {exc}"), status_code=status)

    async def internal_error(request: Request, exc: Exception) -> Response:
        return error_response(exc)

    handlers = {404: http_error, 405: http_error, Exception: internal_error}
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)
    return BearerAuth(DeclaredBodyLimit(app), token, backend.persona_grant)

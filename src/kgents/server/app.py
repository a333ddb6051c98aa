"""The ASGI app of `kgents serve`: a JSON HTTP API over `MemoryAPI`, one route per method, the persona in the path.

Every request but `/livez` carries `Authorization: Bearer <token>` (compared in constant time; 401 otherwise).
Errors are JSON `{"error": {"code", "message"}}` with a stable code per `kgents.errors` class
(`kgents.memory.wire.ERRORS`), so `RemoteMemory` raises what the in-process memory would have raised.
"""

from __future__ import annotations

import contextlib
import hmac
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
from kgents.errors import ConfigError, ValidationError
from kgents.health.model import TriadHealth
from kgents.health.prometheus import CONTENT_TYPE as PROMETHEUS_CONTENT_TYPE
from kgents.health.prometheus import render_prometheus
from kgents.memory import wire
from kgents.memory.api import MemoryAPI
from kgents.memory.forget import ForgetReport
from kgents.server.failures import as_known, hung_up

log = logging.getLogger("kgents.server")

OPEN_PATHS = frozenset({"/livez"})
"""The only path answered without the token (a liveness probe must not need a secret)."""
MAX_LIMIT = 1000


class Backend(Protocol):
    """What the app serves: one memory per persona, and a readiness check of the stores under them."""

    async def memory(self, persona: str) -> MemoryAPI: ...

    async def ready(self) -> dict[str, Any]: ...

    async def operator(self, action: str, persona: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """Operator-wide synapse actions (`coherency`, `reconcile`, `reindex` with an `embedder` option) answered
        by the index's owner; sample ids in the answer are only `persona`'s. `dream` (a `dry_run` option): the
        persona's dream, run by the index's owner."""
        ...

    async def forget(self, persona: str, *, purge_history: bool) -> ForgetReport:
        """Remove the persona everywhere it lives."""
        ...

    async def health(self) -> TriadHealth:
        """The triad's health, measured by this server (the owner of the embedded index)."""
        ...


class BearerAuth:
    """Pure ASGI middleware: every HTTP request but OPEN_PATHS must carry the bearer token."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in OPEN_PATHS:
            given = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
            if not hmac.compare_digest(given, self.expected):
                body = wire.error_body(wire.UNAUTHORIZED[0], "a valid bearer token is required")
                response = JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


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


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    too_large = ValidationError(f"the request body is over the limit of {limit:,} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


Handler = Callable[[MemoryAPI, Request], Awaitable[Response]]


def persona_route(
    backend: Backend, handler: Handler, *, writing: bool = False
) -> Callable[[Request], Awaitable[Response]]:
    """A route over the path's persona's memory, with errors mapped to their codes (`writing`: it changes
    something)."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(await backend.memory(path_persona(request)), request)
        except Exception as exc:
            return error_response(exc, writing=writing)

    return endpoint


def path_persona(request: Request) -> str:
    try:
        return check_persona(request.path_params["persona"])
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
    fields = frozenset({"query", "limit", "filters", "min_score", "explain", "mode"})
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
    return JSONResponse(await memory.status())


def operator(backend: Backend, action: str) -> Handler:
    async def handler(memory: MemoryAPI, request: Request) -> Response:
        options = await read_json(request) if request.method == "POST" else {}
        if not isinstance(options, dict):
            raise ValidationError("the request body must be a JSON object")
        return JSONResponse(await backend.operator(action, memory.persona, options))

    return handler


def forget_persona_route(backend: Backend) -> Callable[[Request], Awaitable[Response]]:
    """DELETE /v1/personas/{persona}[?purge_history=true]: the persona removed everywhere it lives."""

    async def endpoint(request: Request) -> Response:
        try:
            persona = path_persona(request)
            purge = request.query_params.get("purge_history", "false")
            if purge not in ("true", "false"):
                raise ValidationError("purge_history must be true or false")
            report = await backend.forget(persona, purge_history=purge == "true")
            return JSONResponse(report.to_dict())
        except Exception as exc:
            return error_response(exc, writing=True)

    return endpoint


PERSONA_ROUTES: tuple[tuple[str, Handler, str], ...] = (
    ("/memories", remember, "POST"),
    ("/memories/batch", remember_many, "POST"),
    ("/recall", recall, "POST"),
    ("/list", list_entries, "POST"),
    ("/memories/{ref}", get, "GET"),
    ("/memories/{ref}", update, "PATCH"),
    ("/memories/{ref}", forget, "DELETE"),
    ("/memories/{ref}/nurture", nurture, "POST"),
    ("/memories/{ref}/history", history, "GET"),
    ("/memories/{ref}/reassess", reassess, "POST"),
    ("/memories/{ref}/compost", compost, "POST"),
    ("/soul", soul, "GET"),
    ("/soul/mode", set_mode, "PUT"),
    ("/soul/nudge", nudge, "POST"),
    ("/soul/interactions", record_interaction, "POST"),
    ("/status", status, "GET"),
)


def build_app(backend: Backend, token: str, *, mounts: Mapping[str, ASGIApp] | None = None) -> ASGIApp:
    """The whole app: health, the memory API under /v1/personas/{persona}, operator routes, and `mounts` (MCP),
    all behind the bearer token but /livez."""

    async def livez(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            return JSONResponse({"status": "ready", **await backend.ready()})
        except Exception as exc:
            code, _ = wire.error_code(exc)
            return JSONResponse({"status": "unready", "code": code, "error": str(exc)}, status_code=503)

    async def health(request: Request) -> Response:
        return JSONResponse((await backend.health()).to_dict())

    async def metrics(request: Request) -> Response:
        return Response(render_prometheus(await backend.health()), media_type=PROMETHEUS_CONTENT_TYPE)

    routes: list[BaseRoute] = [
        Route("/livez", livez, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/v1/health", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    operator_routes = (
        ("/synapse/coherency", operator(backend, "coherency"), "GET"),
        ("/synapse/index", operator(backend, "index"), "GET"),
        ("/synapse/reconcile", operator(backend, "reconcile"), "POST"),
        ("/synapse/reindex", operator(backend, "reindex"), "POST"),
        ("/dream", operator(backend, "dream"), "POST"),
    )
    routes += [
        Route(
            f"/v1/personas/{{persona}}{path}",
            persona_route(backend, handler, writing=method != "GET" and handler not in (recall, list_entries)),
            methods=[method],
        )
        for path, handler, method in PERSONA_ROUTES + operator_routes
    ]
    routes.append(Route("/v1/personas/{persona}", forget_persona_route(backend), methods=["DELETE"]))
    sub_apps = dict(mounts or {})
    routes += [Mount(path, app=app) for path, app in sub_apps.items()]

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
    return BearerAuth(app, token)

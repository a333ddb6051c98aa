"""The routes of `kgents serve`, declared once: each a `RouteDef` (path, method, what the token needs, its work,
the `Shape` of its body, its query parameters), read by `kgents.server.app` to serve them, by `route_needs` for
the tests that walk them all, and by `kgents.server.openapi` to describe them.

Persona routes live under `/v1/personas/{persona}` (their handlers: `kgents.server.handlers`); operator-wide ones
under `/v1/admin/`. Each route's body is read against its shape before its work runs, after the token is judged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kgents.config import check_persona
from kgents.errors import ConfigError, ValidationError
from kgents.health.model import TriadHealth
from kgents.health.prometheus import CONTENT_TYPE as PROMETHEUS_CONTENT_TYPE
from kgents.health.prometheus import render_prometheus
from kgents.memory import wire
from kgents.memory.api import MemoryAPI
from kgents.memory.forget import ForgetReport
from kgents.memory.shapes import Field, Shape, Str, Unchecked, read
from kgents.server import handlers as h
from kgents.server.auth import Grant, Need, authorize, grant_of
from kgents.server.bodies import error_response, read_json
from kgents.server.handlers import Handler


class ServedHomeAPI(Protocol):
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


RouteFn = Callable[[Request], Awaitable[Response]]
Work = Callable[[Request, dict[str, Any]], Awaitable[Response]]
"""A server route's work: the request and its body as its shape read it ({} for a route without one)."""
W = TypeVar("W")


@dataclass(frozen=True, slots=True)
class Param:
    """A query parameter, as the route's work reads it."""

    name: str
    schema: Mapping[str, Any]
    description: str = ""


@dataclass(frozen=True, slots=True)
class RouteDef(Generic[W]):
    """One route: `work` is a `Handler` under /v1/personas/{persona}, a `Work` elsewhere."""

    path: str
    method: str
    need: Need
    work: W
    summary: str
    body: Shape | None = None
    query: tuple[Param, ...] = ()
    status: int = 200
    """What a success answers (201: created, 204: no content)."""
    media_type: str = "application/json"


PERSONA = "/v1/personas/{persona}"
ADMIN = "/v1/admin"
MCP_PATH = "/mcp"
OPENAPI_PATH = "/openapi.json"


def checked_persona(persona: str) -> str:
    try:
        return check_persona(persona)
    except ConfigError as exc:
        raise ValidationError(str(exc)) from None


def path_persona(request: Request) -> str:
    return checked_persona(request.path_params["persona"])


async def body_of(request: Request, shape: Shape | None) -> dict[str, Any]:
    """The request's body read against `shape` (no shape: the body is not read)."""
    return {} if shape is None else read(shape, await read_json(request))


def persona_endpoint(home: ServedHomeAPI, route: RouteDef[Handler]) -> RouteFn:
    """A route over the path's persona's memory, allowed by its need, with errors mapped to their codes."""

    async def endpoint(request: Request) -> Response:
        try:
            persona = path_persona(request)
            authorize(grant_of(request.scope), route.need, persona)
            memory = await home.memory(persona)
            return await route.work(memory, request, await body_of(request, route.body))
        except Exception as exc:
            return error_response(exc, writing=route.need is Need.WRITE)

    return endpoint


def server_endpoint(route: RouteDef[Work]) -> RouteFn:
    """A route that is not one persona's (health, admin), allowed by its need, with errors mapped to their codes."""

    async def endpoint(request: Request) -> Response:
        try:
            authorize(grant_of(request.scope), route.need)
            return await route.work(request, await body_of(request, route.body))
        except Exception as exc:
            return error_response(exc, writing=route.need is Need.OPERATOR and request.method != "GET")

    return endpoint


def open_endpoint(route: RouteDef[Work]) -> RouteFn:
    """A route answered without a token (`kgents.server.auth.OPEN_PATHS`): no grant to judge, no body read."""

    async def endpoint(request: Request) -> Response:
        return await route.work(request, {})

    return endpoint


PERSONA_ROUTES: tuple[RouteDef[Handler], ...] = (
    RouteDef("/memories", "POST", Need.WRITE, h.remember, "Remember one thing", h.REMEMBER, status=201),
    RouteDef("/memories/batch", "POST", Need.WRITE, h.remember_many, "Remember many", h.REMEMBER_MANY, status=201),
    RouteDef("/recall", "POST", Need.READ, h.recall, "Recall by meaning and words, best first", h.RECALL),
    RouteDef("/list", "POST", Need.READ, h.list_entries, "List entries, filtered and ordered", h.LIST),
    RouteDef("/memories/{ref}", "GET", Need.READ, h.get, "One entry, by id or a unique prefix"),
    RouteDef("/memories/{ref}", "PATCH", Need.WRITE, h.update, "Change fields of an entry", h.UPDATE),
    RouteDef("/memories/{ref}", "DELETE", Need.WRITE, h.forget, "Forget an entry", status=204),
    RouteDef("/memories/{ref}/nurture", "POST", Need.WRITE, h.nurture, "Strengthen an entry", h.NURTURE),
    RouteDef("/memories/{ref}/history", "GET", Need.READ, h.history, "Every recorded change of an entry"),
    RouteDef("/memories/{ref}/reassess", "POST", Need.WRITE, h.reassess, "Set an entry's confidence", h.REASSESS),
    RouteDef("/memories/{ref}/compost", "POST", Need.WRITE, h.compost, "Retire an entry", h.COMPOST),
    RouteDef("/soul", "GET", Need.READ, h.soul, "The soul: mode and eigenvectors"),
    RouteDef("/soul/mode", "PUT", Need.WRITE, h.set_mode, "Set the dialogue mode", h.SET_MODE),
    RouteDef("/soul/nudge", "POST", Need.WRITE, h.nudge, "Move eigenvector values", h.NUDGE),
    RouteDef("/soul/interactions", "POST", Need.WRITE, h.record_interaction, "Count an interaction", h.INTERACTION),
    RouteDef("/status", "GET", Need.READ, h.status, "How this memory is"),
)
"""Under /v1/personas/{persona}: the routes that need only the persona's memory."""


def dream(home: ServedHomeAPI) -> Handler:
    """POST /v1/personas/{persona}/dream: the persona's dream, run by the index's owner (`dry_run`)."""

    async def handler(memory: MemoryAPI, request: Request, body: dict[str, Any]) -> Response:
        return JSONResponse(await home.operator("dream", memory.persona, body))

    return handler


def build_index(home: ServedHomeAPI) -> Handler:
    """POST /v1/personas/{persona}/index/build: wait up to `wait` s for the index's graph, first building if `now`."""

    async def handler(memory: MemoryAPI, request: Request, body: dict[str, Any]) -> Response:
        built = await home.operator("build", memory.persona, {"now": body["now"], "wait": body["wait"]})
        if not grant_of(request.scope).operator:
            built = {"graph": wire.persona_graph(built["graph"])}
        return JSONResponse(built)

    return handler


def backend_persona_routes(home: ServedHomeAPI) -> list[RouteDef[Handler]]:
    """The persona routes that need the backend itself (beside PERSONA_ROUTES)."""
    return [
        RouteDef("/dream", "POST", Need.WRITE, dream(home), "Dream now (the index's owner runs it)", h.DREAM),
        RouteDef("/index/build", "POST", Need.WRITE, build_index(home), "Wait for the index's graph", h.BUILD),
    ]


def persona_routes(home: ServedHomeAPI) -> list[RouteDef[Handler]]:
    """Every route under /v1/personas/{persona}, by its path below that."""
    return [*PERSONA_ROUTES, *backend_persona_routes(home)]


ADMIN_OPTIONS = Shape("the request body", {}, extra="ignored")
REINDEX = Shape(
    "the request body",
    {"embedder": Field(Unchecked(Str()), description="the embedder to index with (default: the active one)")},
    extra="ignored",
)
SAMPLE = Param("persona", {"type": "string"}, "sample ids in the answer are only this persona's")
FULL = Param("full", {"type": "string", "enum": ["1", "true"]}, "measure in full, not by bucket")
PURGE = Param("purge_history", {"type": "string", "enum": ["true", "false"]}, "also remove the audit history")


def operator(home: ServedHomeAPI, action: str) -> Work:
    """/v1/admin/synapse/{action}[?persona=P]: operator-wide synapse work; sample ids in the answer are P's."""

    async def work(request: Request, body: dict[str, Any]) -> Response:
        options = body
        if request.method == "GET" and request.query_params.get(FULL.name) in ("1", "true"):
            options = {"full": True}
        persona = request.query_params.get(SAMPLE.name) or None
        sample = None if persona is None else checked_persona(persona)
        return JSONResponse(await home.operator(action, sample, options))

    return work


def forget_persona(home: ServedHomeAPI) -> Work:
    """DELETE /v1/admin/personas/{persona}[?purge_history=true]: the persona removed everywhere it lives."""

    async def work(request: Request, body: dict[str, Any]) -> Response:
        persona = path_persona(request)
        purge = request.query_params.get(PURGE.name, "false")
        if purge not in ("true", "false"):
            raise ValidationError("purge_history must be true or false")
        report = await home.forget(persona, purge_history=purge == "true")
        return JSONResponse(report.to_dict())

    return work


def probe_routes(home: ServedHomeAPI) -> list[RouteDef[Work]]:
    """Readiness, who am I, health and metrics."""

    async def readyz(request: Request, body: dict[str, Any]) -> Response:
        try:
            return JSONResponse({"status": "ready", **await home.ready()})
        except Exception as exc:
            code, _ = wire.error_code(exc)
            return JSONResponse({"status": "unready", "code": code, "error": str(exc)}, status_code=503)

    async def whoami(request: Request, body: dict[str, Any]) -> Response:
        return JSONResponse(grant_of(request.scope).to_dict())

    async def health(request: Request, body: dict[str, Any]) -> Response:
        return JSONResponse((await home.health()).to_dict())

    async def metrics(request: Request, body: dict[str, Any]) -> Response:
        return Response(render_prometheus(await home.health()), media_type=PROMETHEUS_CONTENT_TYPE)

    return [
        RouteDef("/readyz", "GET", Need.ANY, readyz, "Whether the stores answer"),
        RouteDef("/v1/whoami", "GET", Need.ANY, whoami, "What this token allows"),
        RouteDef("/v1/health", "GET", Need.OPERATOR, health, "The triad's health"),
        RouteDef("/metrics", "GET", Need.OPERATOR, metrics, "Prometheus metrics", media_type=PROMETHEUS_CONTENT_TYPE),
    ]


def admin_routes(home: ServedHomeAPI) -> list[RouteDef[Work]]:
    """Operator-wide routes under /v1/admin."""
    synapse = f"{ADMIN}/synapse"
    return [
        RouteDef(
            f"{synapse}/coherency",
            "GET",
            Need.OPERATOR,
            operator(home, "coherency"),
            "Index coherency",
            query=(SAMPLE, FULL),
        ),
        RouteDef(
            f"{synapse}/index", "GET", Need.OPERATOR, operator(home, "index"), "The index's state", query=(SAMPLE,)
        ),
        RouteDef(
            f"{synapse}/reconcile",
            "POST",
            Need.OPERATOR,
            operator(home, "reconcile"),
            "Repair the index from the anchor",
            ADMIN_OPTIONS,
            query=(SAMPLE,),
        ),
        RouteDef(
            f"{synapse}/reindex",
            "POST",
            Need.OPERATOR,
            operator(home, "reindex"),
            "Index again with an embedder",
            REINDEX,
            query=(SAMPLE,),
        ),
        RouteDef(
            f"{ADMIN}/personas/{{persona}}",
            "DELETE",
            Need.OPERATOR,
            forget_persona(home),
            "Remove a persona everywhere",
            query=(PURGE,),
        ),
    ]


async def livez(request: Request, body: dict[str, Any]) -> Response:
    return JSONResponse({"status": "ok"})


LIVEZ: RouteDef[Work] = RouteDef("/livez", "GET", Need.ANY, livez, "Whether the server is alive (no token)")
"""The one route answered without a token (`kgents.server.auth.OPEN_PATHS`)."""


def server_routes(home: ServedHomeAPI, document: Work) -> list[RouteDef[Work]]:
    """Every route that is not one persona's (`document`: the work of GET /openapi.json)."""
    described = RouteDef(OPENAPI_PATH, "GET", Need.ANY, document, "This API as an OpenAPI 3.1 document")
    return [*probe_routes(home), described, *admin_routes(home)]


def route_needs(home: ServedHomeAPI) -> list[tuple[str, str, Need]]:
    """(method, path, need) of every route `build_app` serves (with /mcp: any token; its tools judge), for the
    tests that walk them all."""

    async def unused(request: Request, body: dict[str, Any]) -> Response:
        raise NotImplementedError

    found = [(r.method, r.path, r.need) for r in server_routes(home, unused)]
    found += [(r.method, f"{PERSONA}{r.path}", r.need) for r in persona_routes(home)]
    return [*found, ("POST", MCP_PATH, Need.ANY)]

"""The OpenAPI 3.1 document of `kgents serve` (`GET /openapi.json`), generated from the routes table
(`kgents.server.routes`) and the shapes that read each request's body (`kgents.memory.shapes`), never kept by
hand: what it says a route takes is what the route accepts. Errors are `kgents.memory.wire`'s shape and codes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kgents import __version__
from kgents.memory import wire
from kgents.memory.shapes import schema_of
from kgents.server.auth import OPEN_PATHS, Need
from kgents.server.routes import MCP_PATH, PERSONA, RouteDef

ERROR_CODES = sorted(
    {code for code, _, _ in wire.ERRORS} | {wire.INTERNAL[0], wire.UNAUTHORIZED[0], "not_found", "method_not_allowed"}
)
"""Every code an error answer carries (`not_found` and `method_not_allowed` also name a path or method the API
does not have)."""
ERROR = {"$ref": "#/components/responses/Error"}
NEEDS = {
    Need.ANY: "any valid token",
    Need.READ: "the operator token, or a token of the path's persona",
    Need.WRITE: "the operator token, or a read-write token of the path's persona",
    Need.OPERATOR: "the operator token",
}


def components() -> dict[str, Any]:
    """The bearer scheme and the one error shape."""
    error = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string", "enum": ERROR_CODES}, "message": {"type": "string"}},
            }
        },
    }
    return {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {"Error": error},
        "responses": {
            "Error": {
                "description": '`{"error": {"code", "message"}}`, the code stable per error class',
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        },
    }


def parameters(path: str, route: RouteDef[Any]) -> list[dict[str, Any]]:
    """The path's parameters (`{persona}`, `{ref}`) and the route's query parameters."""
    found: list[dict[str, Any]] = []
    if "{persona}" in path:
        found.append(
            {
                "name": "persona",
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
                "description": "the persona whose memory this is",
            }
        )
    if "{ref}" in path:
        found.append(
            {
                "name": "ref",
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
                "description": "an entry id, or a unique prefix of 4+ hex characters of one",
            }
        )
    found += [
        {"name": p.name, "in": "query", "required": False, "schema": dict(p.schema), "description": p.description}
        for p in route.query
    ]
    return found


def success(route: RouteDef[Any]) -> dict[str, Any]:
    if route.status == 204:
        return {"description": "done; no content"}
    schema = {"type": "string"} if route.media_type != "application/json" else {"type": "object"}
    return {"description": route.summary, "content": {route.media_type: {"schema": schema}}}


def operation(path: str, route: RouteDef[Any]) -> dict[str, Any]:
    """One route as an OpenAPI operation, with what its token needs (`x-kgents-need`)."""
    op: dict[str, Any] = {
        "summary": route.summary,
        "description": f"Needs {NEEDS[route.need]}.",
        "x-kgents-need": route.need.value,
        "operationId": f"{route.method.lower()}{path.replace('/', '_').replace('{', '').replace('}', '')}",
        "responses": {str(route.status): success(route), "401": ERROR, "default": ERROR},
    }
    if route.need is not Need.ANY:
        op["responses"]["403"] = ERROR
    if params := parameters(path, route):
        op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": schema_of(route.body)}},
        }
    if path in OPEN_PATHS:
        op["security"] = []
        del op["responses"]["401"]
    return op


def document(routes: Iterable[tuple[str, RouteDef[Any]]]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `routes` ((full path, route) pairs), with /mcp beside them."""
    paths: dict[str, dict[str, Any]] = {}
    for path, route in routes:
        paths.setdefault(path, {})[route.method.lower()] = operation(path, route)
    paths[MCP_PATH] = {"post": mcp_operation()}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "kgents memory server",
            "version": __version__,
            "description": "The memory API of `kgents serve`: one persona's memory under /v1/personas/{persona}, "
            "operator routes under /v1/admin. Every route but /livez needs `Authorization: Bearer <token>`.",
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": components(),
    }


def mcp_operation() -> dict[str, Any]:
    return {
        "summary": "MCP (streamable HTTP, JSON-RPC): the persona's memory as tools",
        "description": f"Needs {NEEDS[Need.ANY]}; the tools act on the token's persona.",
        "x-kgents-need": Need.ANY.value,
        "operationId": "post_mcp",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
        "responses": {"200": {"description": "the JSON-RPC answer"}, "401": ERROR, "default": ERROR},
    }


def persona_paths(routes: Iterable[RouteDef[Any]]) -> list[tuple[str, RouteDef[Any]]]:
    return [(f"{PERSONA}{r.path}", r) for r in routes]

"""The handlers of the memory API under `/v1/personas/{persona}`: each takes the path's persona's memory, the
request and its body already read against the route's `Shape` (declared here, beside the handler that uses it;
`kgents.server.routes` binds the two), and answers JSON."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kgents.garden.filters import EntryFilter
from kgents.garden.records import OrderBy
from kgents.garden.service import UPDATABLE
from kgents.memory import wire
from kgents.memory.api import MemoryAPI, MemoryItem
from kgents.memory.shapes import Bool, Field, Int, List, Nested, Number, ObjectOf, Shape, Str, Time, Unchecked
from kgents.server.auth import grant_of

MAX_LIMIT = 1000

Handler = Callable[[MemoryAPI, Request, dict[str, Any]], Awaitable[Response]]
"""A persona route's work: the memory, the request, its body as its shape read it ({} for a route without one)."""


def ref_of(request: Request) -> str:
    return str(request.path_params["ref"])


FILTERS = Field(Nested(wire.FILTERS, EntryFilter), nullable=True, default=None)
EVIDENCE = Field(Str(), nullable=True, default=None, description="what supports it now")

REMEMBER = wire.ITEM
REMEMBER_MANY = Shape("the batch", {"items": Field(List(Nested(wire.ITEM, MemoryItem)), default=None)})
RECALL = Shape(
    "the recall",
    {
        "query": Field(Str(), required=True, description="what to look for, in words; matched by meaning"),
        "limit": Field(Int(1, MAX_LIMIT), default=10),
        "filters": FILTERS,
        "min_score": Field(Number(), nullable=True, default=None, description="only hits at least this relevant"),
        "explain": Field(Bool(), default=False, description="each hit with its ranks"),
        "mode": Field(Str(), default="hybrid", description="hybrid, dense or lexical"),
        "asked_at": Field(Time(), nullable=True, default=None, description="when the question is asked"),
    },
)
LIST = Shape(
    "the list",
    {
        "filters": FILTERS,
        "order_by": Field(Str(), default="confidence", description=", ".join(OrderBy)),
        "limit": Field(Int(1, 100_000), default=100),
        "offset": Field(Int(0, 2**62), default=0),
    },
)
UPDATE = Shape(
    "the update",
    {name: Field(Unchecked(wire.ITEM.fields[name].kind)) for name in UPDATABLE},
    extra="memory",  # the memory itself names any field it cannot update
    description="any of the fields to change",
)
NURTURE = Shape(
    "the nurture",
    {
        "evidence": EVIDENCE,
        "delta": Field(Number(), default=0.05, description="confidence to add"),
        "confidence": Field(Number(), nullable=True, default=None, description="set the confidence instead"),
    },
)
REASSESS = Shape("the reassessment", {"confidence": Field(Number(), default=None), "evidence": EVIDENCE})
COMPOST = Shape(
    "the compost",
    {
        "successor": Field(Str(), nullable=True, default=None, description="the entry that supersedes it"),
        "evidence": EVIDENCE,
    },
)
SET_MODE = Shape(
    "the soul mode", {"mode": Field(Str(), default=None, description="REFLECT, ADVISE, CHALLENGE or EXPLORE")}
)
NUDGE = Shape(
    "the nudge", {"shifts": Field(ObjectOf(Number(), "shifts must be an object of axis → delta"), default=None)}
)
INTERACTION = Shape("the interaction", {"tokens": Field(Int(0, 10_000_000), default=0)})
DREAM = Shape(
    "the request body",
    {"dry_run": Field(Unchecked(Bool()), description="only say what the dream would do")},
    extra="memory",  # the dream names what it does not take
)
BUILD = Shape(
    "the build request",
    {
        "now": Field(Bool(), default=True, description="start a build if none is under way"),
        "wait": Field(Number(0, wire.BUILD_WAIT_S, unit="seconds"), default=wire.BUILD_WAIT_S),
    },
)


async def remember(memory: MemoryAPI, request: Request, body: dict[str, Any]) -> Response:
    item = MemoryItem(**body)
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


async def remember_many(memory: MemoryAPI, request: Request, body: dict[str, Any]) -> Response:
    entries = await memory.remember_many(list(body["items"]))
    return JSONResponse({"entries": [e.to_dict() for e in entries]}, status_code=201)


async def recall(memory: MemoryAPI, request: Request, body: dict[str, Any]) -> Response:
    hits = await memory.recall(
        body["query"],
        limit=body["limit"],
        filters=body["filters"],
        min_score=body["min_score"],
        explain=body["explain"],
        mode=body["mode"],
        asked_at=body["asked_at"],
    )
    return JSONResponse({"hits": [h.to_dict() for h in hits]})


async def list_entries(memory: MemoryAPI, request: Request, body: dict[str, Any]) -> Response:
    entries = await memory.list(body["filters"], order_by=body["order_by"], limit=body["limit"], offset=body["offset"])
    return JSONResponse({"entries": [e.to_dict() for e in entries]})


async def get(memory: MemoryAPI, request: Request, body: dict[str, Any]) -> Response:
    return JSONResponse((await memory.get(ref_of(request))).to_dict())


async def update(memory: MemoryAPI, request: Request, body: dict[str, Any]) -> Response:
    return JSONResponse((await memory.update(ref_of(request), **body)).to_dict())


async def nurture(memory: MemoryAPI, request: Request, body: dict[str, Any]) -> Response:
    entry = await memory.nurture(ref_of(request), **body)
    return JSONResponse(entry.to_dict())


async def reassess(memory: MemoryAPI, request: Request, body: dict[str, Any]) -> Response:
    entry = await memory.reassess(ref_of(request), **body)
    return JSONResponse(entry.to_dict())


async def compost(memory: MemoryAPI, request: Request, body: dict[str, Any]) -> Response:
    entry = await memory.compost(ref_of(request), **body)
    return JSONResponse(entry.to_dict())


async def forget(memory: MemoryAPI, request: Request, body: dict[str, Any]) -> Response:
    await memory.forget(ref_of(request))
    return Response(status_code=204)


async def history(memory: MemoryAPI, request: Request, body: dict[str, Any]) -> Response:
    return JSONResponse({"records": [r.to_dict() for r in await memory.history(ref_of(request))]})


async def soul(memory: MemoryAPI, request: Request, body: dict[str, Any]) -> Response:
    return JSONResponse((await memory.soul()).to_dict())


async def set_mode(memory: MemoryAPI, request: Request, body: dict[str, Any]) -> Response:
    return JSONResponse((await memory.set_mode(body["mode"])).to_dict())


async def nudge(memory: MemoryAPI, request: Request, body: dict[str, Any]) -> Response:
    return JSONResponse((await memory.nudge(body["shifts"])).to_dict())


async def record_interaction(memory: MemoryAPI, request: Request, body: dict[str, Any]) -> Response:
    return JSONResponse((await memory.record_interaction(body["tokens"])).to_dict())


async def status(memory: MemoryAPI, request: Request, body: dict[str, Any]) -> Response:
    found = await memory.status()
    return JSONResponse(found if grant_of(request.scope).operator else wire.persona_status(found))

"""kgents over MCP (the official `mcp` SDK, v2 `MCPServer`): the memory of one persona as tools for an agent.

`kgents mcp` serves it over stdio (desktop agents); `kgents serve` mounts `build_mcp_app(...)` at `/mcp`
(streamable HTTP, behind the server's bearer token). The tools are thin calls of `MemoryAPI`; the persona is the
server's (`--persona` / KGENTS_PERSONA), never a tool argument, so a model cannot wander into another persona's
memory. Read-only tools say so (`readOnlyHint`); `forget` is marked destructive.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import ToolAnnotations
from pydantic import ConfigDict, Field, model_validator
from starlette.types import Receive, Scope, Send

from kgents import __version__
from kgents.errors import KgentsError, ValidationError
from kgents.garden.filters import EntryFilter
from kgents.memory import wire
from kgents.memory.api import DEFAULT_TYPE, MemoryAPI
from kgents.synapse.relevance import DEFAULT_MIN_SCORE

MemorySource = Callable[[], MemoryAPI | Awaitable[MemoryAPI]]
"""What the MCP server is built on: a callable giving the MemoryAPI of the server's configured persona."""

INSTRUCTIONS = (
    "The long-term memory of one persona (K-gent). `remember` what you learn about the user (preferences, patterns,"
    " values, behaviours, insights); `recall` by meaning before answering; `nurture` an entry when new evidence"
    " supports it; `forget` only what the user asks to be forgotten."
)

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)

EntryId = Annotated[str, Field(description="An entry id, or a unique prefix of 4+ hex characters of one.")]
Types = Annotated[
    list[str] | None, Field(description="Only these entry types: PREFERENCE, PATTERN, VALUE, BEHAVIOR, INSIGHT.")
]
Tags = Annotated[list[str] | None, Field(description="Entries must carry every one of these tags.")]
MinConfidence = Annotated[float | None, Field(description="At least this confident, in [0, 1].", ge=0, le=1)]


def _when(value: str | None, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{what} must be an ISO-8601 timestamp with a time zone (got {value!r:.40})") from None
    if parsed.tzinfo is None:
        raise ValidationError(f"{what} must carry a time zone (e.g. 2026-01-31T09:00:00+00:00)")
    return parsed


def entry_filter(
    types: Sequence[str] | None = None,
    tags: Sequence[str] | None = None,
    min_confidence: float | None = None,
    lifecycles: Sequence[str] | None = None,
    text: str | None = None,
    include_compost: bool = False,
) -> EntryFilter:
    return EntryFilter(
        lifecycles=tuple(lifecycles or ()),  # type: ignore[arg-type]
        entry_types=tuple(types or ()),  # type: ignore[arg-type]
        tags=tuple(tags or ()),
        min_confidence=min_confidence,
        text=text,
        include_compost=include_compost,
    )


def closed(tool: Tool) -> Tool:
    """`tool` with its arguments closed: an argument it does not take (`"persona": "bob"`) is an error naming it,
    never silently dropped, and its input schema says `additionalProperties: false`."""
    base = tool.fn_metadata.arg_model
    takes = sorted(field.alias or name for name, field in base.model_fields.items())

    def known_only(cls: type[Any], data: Any) -> Any:
        unknown = sorted(set(data) - set(takes)) if isinstance(data, dict) else []
        if unknown:
            raise ValueError(
                f"unknown argument(s) {', '.join(map(repr, unknown))}: {tool.name} takes only"
                f" {', '.join(takes) or 'no arguments'}"
            )
        return data

    namespace: dict[str, Any] = {
        "__module__": base.__module__,
        "__qualname__": base.__qualname__,
        "model_config": ConfigDict(**{**base.model_config, "extra": "forbid"}),
        "known_only": model_validator(mode="before")(classmethod(known_only)),  # type: ignore[arg-type]
    }
    meta: Any = type(base)  # pydantic's model metaclass: a subclass made the way a class statement makes it
    strict: type[ArgModelBase] = meta(base.__name__, (base,), namespace)
    tool.fn_metadata.arg_model = strict
    tool.parameters = strict.model_json_schema(by_alias=True)
    return tool


Call = Callable[[Callable[[MemoryAPI], Awaitable[Any]]], Awaitable[Any]]
"""Runs one tool's work on the persona's memory (`caller`)."""


def caller(memory_for_persona: MemorySource) -> Call:
    """What the tools run their work with: the persona's memory, and a kgents error as the tool's error."""

    async def memory() -> MemoryAPI:
        found = memory_for_persona()
        return await found if inspect.isawaitable(found) else found

    async def call(work: Callable[[MemoryAPI], Awaitable[Any]]) -> Any:
        """Run one tool's work; a kgents error is the tool's error (its one plain line), never a crash."""
        try:
            return await work(await memory())
        except KgentsError as exc:
            raise ToolError(str(exc)) from None

    return call


def build_mcp_server(memory_for_persona: MemorySource) -> MCPServer[Any]:
    """The MCP server of one persona's memory (its tools call `memory_for_persona()`'s MemoryAPI)."""
    server, call = _Tools(), caller(memory_for_persona)
    for add in (remember_tool, recall_tool, browsing_tools, entry_tools, persona_tools):
        add(server, call)
    return MCPServer(name="kgents", version=__version__, instructions=INSTRUCTIONS, tools=server.tools)


def remember_tool(server: _Tools, call: Call) -> None:
    """`remember`: store one memory."""

    @server.tool(annotations=WRITES)
    async def remember(
        content: Annotated[str, Field(description="What to remember, in words (1-10,000 characters).")],
        type: Annotated[
            str, Field(description="PREFERENCE, PATTERN, VALUE, BEHAVIOR or INSIGHT (a thing learned).")
        ] = DEFAULT_TYPE.value,
        tags: Annotated[list[str] | None, Field(description="Tags (no spaces or commas).")] = None,
        confidence: Annotated[float, Field(description="How sure, in [0, 1].", ge=0, le=1)] = 0.5,
        observed_at: Annotated[
            str | None, Field(description="When it was observed (ISO-8601 with a time zone); default now.")
        ] = None,
    ) -> dict[str, Any]:
        """Store one memory of this persona; it can be recalled as soon as this returns."""
        entry = await call(  # checked inside `call`: a bad value is the tool's one-line error
            lambda m: m.remember(
                content,
                type=type,
                tags=tags or (),
                confidence=confidence,
                observed_at=_when(observed_at, "observed_at"),
            )
        )
        return dict(entry.to_dict())


def recall_tool(server: _Tools, call: Call) -> None:
    """`recall`: memories that answer a query, best first."""

    @server.tool(annotations=READ_ONLY)
    async def recall(
        query: Annotated[str, Field(description="What to look for, in words; matched by meaning.")],
        limit: Annotated[int, Field(description="At most this many hits.", ge=1, le=100)] = 10,
        types: Types = None,
        tags: Tags = None,
        min_confidence: MinConfidence = None,
        min_score: Annotated[
            float | None,
            Field(
                description="Only hits at least this relevant, in [0, 1]. The default is the calibrated bar: it keeps"
                " what answers the question and drops what only looks alike; 0 or null returns every hit.",
                ge=0,
                le=1,
            ),
        ] = DEFAULT_MIN_SCORE,
        include_compost: Annotated[bool, Field(description="Also retired (COMPOST) entries.")] = False,
        asked_at: Annotated[
            str | None,
            Field(description="When the question is asked (ISO-8601 with a time zone), for words like 'last week'."),
        ] = None,
    ) -> dict[str, Any]:
        """Memories of this persona that answer the query, best first, each with its relevance in [0, 1]
        (meaning and words; the people and the time the query names are preferred)."""
        hits = await call(  # checked inside `call`: a bad value is the tool's one-line error
            lambda m: m.recall(
                query,
                limit=limit,
                filters=entry_filter(types, tags, min_confidence, include_compost=include_compost),
                min_score=min_score or None,
                asked_at=_when(asked_at, "asked_at"),
            )
        )
        return {"hits": [hit.to_dict() for hit in hits]}


def browsing_tools(server: _Tools, call: Call) -> None:
    """`get` one memory, `list` them filtered and ordered."""

    @server.tool(annotations=READ_ONLY)
    async def get(entry_id: EntryId) -> dict[str, Any]:
        """One memory, by id."""
        return dict((await call(lambda m: m.get(entry_id))).to_dict())

    @server.tool(name="list", annotations=READ_ONLY)
    async def list_entries(
        types: Types = None,
        tags: Tags = None,
        min_confidence: MinConfidence = None,
        lifecycles: Annotated[
            list[str] | None, Field(description="Only these stages: SEED, SAPLING, TREE, FLOWER, COMPOST.")
        ] = None,
        text: Annotated[str | None, Field(description="Content contains this (any case).")] = None,
        order_by: Annotated[str, Field(description="confidence, planted, nurtured or content.")] = "confidence",
        limit: Annotated[int, Field(description="At most this many.", ge=1, le=1000)] = 20,
        offset: Annotated[int, Field(description="Skip this many first (paging).", ge=0)] = 0,
    ) -> dict[str, Any]:
        """Memories of this persona, filtered and ordered (most confident first by default)."""
        entries = await call(
            lambda m: m.list(
                entry_filter(types, tags, min_confidence, lifecycles, text),
                order_by=order_by,
                limit=limit,
                offset=offset,
            )
        )
        return {"entries": [e.to_dict() for e in entries]}


def entry_tools(server: _Tools, call: Call) -> None:
    """`nurture`, `forget` and the `history` of one memory."""

    @server.tool(annotations=WRITES)
    async def nurture(
        entry_id: EntryId,
        evidence: Annotated[str | None, Field(description="What supports it now.")] = None,
        delta: Annotated[float, Field(description="Confidence to add (nurture never lowers it).", ge=0, le=1)] = 0.05,
        confidence: Annotated[float | None, Field(description="Set the confidence instead.", ge=0, le=1)] = None,
    ) -> dict[str, Any]:
        """Strengthen a memory with new evidence (it grows SEED → SAPLING → TREE → FLOWER with confidence)."""
        entry = await call(lambda m: m.nurture(entry_id, evidence=evidence, delta=delta, confidence=confidence))
        return dict(entry.to_dict())

    @server.tool(annotations=DESTRUCTIVE)
    async def forget(entry_id: EntryId) -> dict[str, Any]:
        """Delete one memory of this persona everywhere (its history stays in the audit trail)."""
        entry = await call(lambda m: m.get(entry_id))
        await call(lambda m: m.forget(entry.id))
        return {"forgotten": str(entry.id)}

    @server.tool(annotations=READ_ONLY)
    async def history(entry_id: EntryId) -> dict[str, Any]:
        """Every recorded change of one memory, oldest first."""
        records = await call(lambda m: m.history(entry_id))
        return {"changes": [r.to_dict() for r in records]}


def persona_tools(server: _Tools, call: Call) -> None:
    """The persona's `soul_mode` and `status`."""

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True))
    async def soul_mode(
        mode: Annotated[
            str | None, Field(description="Set it: REFLECT, ADVISE, CHALLENGE or EXPLORE; leave out to read it.")
        ] = None,
    ) -> dict[str, Any]:
        """The persona's dialogue mode and eigenvectors; with `mode`, change the mode first."""
        view = await call(lambda m: m.soul() if mode is None else m.set_mode(mode))
        return dict(view.to_dict())

    @server.tool(annotations=READ_ONLY)
    async def status() -> dict[str, Any]:
        """How this memory is: entries, events waiting for the index, coherency, where the soul came from."""
        return wire.persona_status(await call(lambda m: m.status()))


class _Tools:
    """Collects the tools (each closed to unknown arguments) before the server is made with them."""

    def __init__(self) -> None:
        self.tools: list[Tool] = []

    def tool(self, *, name: str | None = None, annotations: ToolAnnotations) -> Callable[[Any], Any]:
        def register(fn: Any) -> Any:
            self.tools.append(closed(Tool.from_function(fn, name=name, annotations=annotations)))
            return fn

        return register


class McpApp:
    """The streamable-HTTP ASGI app of `build_mcp_app`: answers MCP at whatever path it is mounted on.

    Its session manager runs in a task of its own, started by an ASGI lifespan startup (when the app is the top
    app or its host passes lifespan events on), by its host's lifespan entering `router.lifespan_context(app)`
    (as for a mounted Starlette app) or `lifespan()`, by `start()`, or else by the first request; `aclose()` (or
    the end of the lifespan) stops it.
    """

    def __init__(self, server: MCPServer[Any], allowed_hosts: Sequence[str] | None = None) -> None:
        if allowed_hosts is None:  # the server's bearer token is the guard; no Host check
            security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
        else:
            origins = [f"{scheme}://{host}" for host in allowed_hosts for scheme in ("http", "https")]
            security = TransportSecuritySettings(
                enable_dns_rebinding_protection=True, allowed_hosts=list(allowed_hosts), allowed_origins=origins
            )
        self.server = server
        # Stateless with JSON answers: any one of several servers behind a load balancer can take any request.
        server.streamable_http_app(stateless_http=True, json_response=True, transport_security=security)
        self.sessions: StreamableHTTPSessionManager = server.session_manager
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _hold(self, ready: asyncio.Future[None]) -> None:
        try:
            async with self.sessions.run():
                ready.set_result(None)
                await self._stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.aclose()

    @property
    def router(self) -> _Router:
        """What a Starlette host looks for to run a mounted app's lifespan with its own."""
        return _Router(self)

    async def start(self) -> None:
        async with self._lock:
            if self._task is None:
                ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._task = asyncio.create_task(self._hold(ready), name="kgents-mcp-sessions")
                await ready

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            self._stop.set()
            await task

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan_events(receive, send)
            return
        if self._task is None:
            await self.start()
        await self.sessions.handle_request(scope, receive, send)

    async def _lifespan_events(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


class _Router:
    def __init__(self, app: McpApp) -> None:
        self.app = app

    def lifespan_context(self, _host: object) -> contextlib.AbstractAsyncContextManager[None]:
        return self.app.lifespan()


def build_mcp_app(memory_for_persona: MemorySource, *, allowed_hosts: Sequence[str] | None = None) -> McpApp:
    """The MCP server as a streamable-HTTP ASGI app, for `kgents serve` to mount at `/mcp` (behind its bearer
    token check). `allowed_hosts` (e.g. `["127.0.0.1:*"]`) turns on the SDK's DNS-rebinding check."""
    return McpApp(build_mcp_server(memory_for_persona), allowed_hosts)

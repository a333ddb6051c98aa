"""The JSON shapes of the HTTP API, shared by the server (`kgents.server.app`) and its client (`RemoteMemory`):
filters, items, hits, audit records, the soul, and errors as a stable code that names the `kgents.errors` class.

Everything read from the wire is checked here before it reaches the memory: an unknown field, a wrong type or a
malformed time is a `ValidationError` naming the field, so a request either is what the API says or fails whole.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kgents.errors import (
    BackendUnavailableError,
    ConfigError,
    ConflictError,
    IndexLockedError,
    IndexMismatchError,
    KgentsError,
    LifecycleError,
    NotFoundError,
    NotIndexedError,
    OutcomeUnknownError,
    PermissionDeniedError,
    SchemaError,
    StorageFullError,
    TooLargeError,
    ValidationError,
)
from kgents.garden.filters import EntryFilter
from kgents.garden.model import EntryType, GardenEntry, Lifecycle
from kgents.garden.records import AuditRecord, Operation
from kgents.memory.api import DEFAULT_TYPE, MemoryItem, RecallHit, SoulView
from kgents.memory.shapes import Bool, Field, List, Number, ObjectOf, Shape, Str, Time, Unchecked, Uuid, read

ERRORS: tuple[tuple[str, type[KgentsError], int], ...] = (
    # most specific first: the first class an error is an instance of names its code
    ("lifecycle", LifecycleError, 409),
    ("too_large", TooLargeError, 413),
    ("invalid", ValidationError, 400),
    ("forbidden", PermissionDeniedError, 403),
    ("not_found", NotFoundError, 404),
    ("conflict", ConflictError, 409),
    ("outcome_unknown", OutcomeUnknownError, 503),
    ("not_indexed", NotIndexedError, 503),
    ("storage_full", StorageFullError, 507),
    ("index_locked", IndexLockedError, 503),
    ("unavailable", BackendUnavailableError, 503),
    ("index_mismatch", IndexMismatchError, 500),
    ("schema", SchemaError, 500),
    ("config", ConfigError, 500),
)
"""code, error class, HTTP status. Any other failure is `internal` (500); a missing or wrong token `unauthorized`."""

INTERNAL = ("internal", 500)
UNAUTHORIZED = ("unauthorized", 401)

_BY_CODE: dict[str, type[KgentsError]] = {code: kind for code, kind, _ in ERRORS}


def error_code(error: BaseException) -> tuple[str, int]:
    """The stable code and HTTP status of an error raised by the memory."""
    for code, kind, status in ERRORS:
        if isinstance(error, kind):
            return code, status
    return INTERNAL


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_from_body(status: int, body: object) -> KgentsError:
    """The `kgents.errors` instance a response stands for, so a caller cannot tell a remote memory from a local
    one; an unknown code is a plain KgentsError (an internal error, exit 70 on the CLI)."""
    detail = body.get("error") if isinstance(body, dict) else None
    code = str(detail.get("code", "")) if isinstance(detail, dict) else ""
    message = str(detail.get("message", "")) if isinstance(detail, dict) else ""
    if code == UNAUTHORIZED[0]:
        return BackendUnavailableError(
            "the kgents server refused our token (KGENTS_SERVER_TOKEN, or the token file under KGENTS_HOME)"
        )
    kind = _BY_CODE.get(code)
    if kind is None:
        return KgentsError(message or f"the kgents server answered HTTP {status}")
    return kind(message)


# -- reading requests --------------------------------------------------------------------------------------------
BUILD_WAIT_S = 20.0
"""The longest one request to wait for the index's graph waits (`RemoteMemory.build_index` asks again)."""
INDEX_WIDE = frozenset({"points", "in_graph", "outside", "builds_after"})
"""The graph's counts of the whole index, every persona's points: the operator's to see, not a persona's."""


def persona_graph(graph: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The index graph's state as one persona may see it: its state, phase and progress, no index-wide counts."""
    return None if graph is None else {k: v for k, v in graph.items() if k not in INDEX_WIDE}


def persona_status(status: Mapping[str, Any]) -> dict[str, Any]:
    """A persona's `status()` as a persona token may see it (`persona_graph` of its `index_graph`)."""
    return {**status, "index_graph": persona_graph(status.get("index_graph"))}


FILTERS = Shape(
    "filters",
    {
        "lifecycles": Field(List(Unchecked(Str())), default=None, description="only these stages (SEED … COMPOST)"),
        "entry_types": Field(List(Unchecked(Str())), default=None, description="only these entry types"),
        "tags": Field(List(Unchecked(Str())), default=None, description="entries carrying every one of these"),
        "min_confidence": Field(Number(), nullable=True, default=None, description="at least this confident"),
        "text": Field(Unchecked(Str()), default=None, description="content contains this (any case)"),
        "observed_after": Field(Time(), nullable=True, default=None),
        "observed_before": Field(Time(), nullable=True, default=None),
        "include_compost": Field(Unchecked(Bool()), default=False, description="also retired (COMPOST) entries"),
    },
    prefix="filters.",
)


def filter_from_dict(data: object) -> EntryFilter | None:
    return None if data is None else EntryFilter(**read(FILTERS, data))


def filter_to_dict(filters: EntryFilter | None) -> dict[str, Any] | None:
    if filters is None:
        return None
    return {k: v for k, v in filters.to_dict().items() if v not in (None, [], False)}


ITEM = Shape(
    "the memory",
    {
        "content": Field(Str(), required=True, description="what to remember, in words"),
        "type": Field(Str(), default=str(DEFAULT_TYPE), description=", ".join(EntryType)),
        "tags": Field(List(Unchecked(Str())), default=None),
        "confidence": Field(Number(), default=0.5, description="how sure, in [0, 1]"),
        "observed_at": Field(Time(), nullable=True, default=None, description="when it was observed; default now"),
        "evidence": Field(List(Unchecked(Str())), default=None),
        "affinities": Field(
            ObjectOf(None, "{what}: affinities must be a JSON object of axis → number"),
            nullable=True,
            default=None,
            description="axis → number",
        ),
        "entry_id": Field(Uuid(), nullable=True, default=None, description="the new entry's id (default: a new one)"),
    },
)


def item_from_dict(data: object, what: str = "the memory") -> MemoryItem:
    return MemoryItem(**read(ITEM, data, what))


def item_to_dict(item: MemoryItem) -> dict[str, Any]:
    data: dict[str, Any] = {
        "content": item.content,
        "type": str(item.type),
        "tags": jsonable(item.tags),
        "confidence": item.confidence,
        "evidence": jsonable(item.evidence),
    }
    if item.observed_at is not None:
        data["observed_at"] = item.observed_at.isoformat()
    if item.affinities is not None:
        data["affinities"] = jsonable(item.affinities)
    if item.entry_id is not None:
        data["entry_id"] = str(item.entry_id)
    return data


def jsonable(value: object) -> object:
    """A field value as JSON can carry it: tuples and other sequences as lists, mappings as objects (a string
    stays a string, so the memory can refuse a bare string where a list belongs)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list | set | frozenset):
        return [jsonable(v) for v in value]
    return value


# -- reading responses --------------------------------------------------------------------------------------------
def _aware(value: object) -> datetime:
    parsed = datetime.fromisoformat(value)  # type: ignore[arg-type]  # a non-string is a TypeError, caught below
    if parsed.tzinfo is None:
        raise ValueError(f"a time without a timezone: {value!r:.40}")
    return parsed.astimezone(UTC)


def entry_from_dict(data: Mapping[str, Any]) -> GardenEntry:
    """An entry of a server's answer. The server sends only entries its store holds, which were validated when
    they were written, so each field is converted to its type (a malformed one is a KgentsError naming the answer)
    but the content rules are not run again: a recall's hits cost a tenth of what `GardenEntry.from_dict` takes."""
    try:
        return GardenEntry.stored(
            id=uuid.UUID(str(data["id"])),
            persona=str(data["persona"]),
            content=str(data["content"]),
            entry_type=EntryType(data["entry_type"]),
            lifecycle=Lifecycle(data["lifecycle"]),
            confidence=float(data["confidence"]),
            planted_at=_aware(data["planted_at"]),
            last_nurtured=_aware(data["last_nurtured"]),
            eigenvector_affinities={str(k): float(v) for k, v in data["eigenvector_affinities"].items()},
            evidence=tuple(str(e) for e in data["evidence"]),
            tags=tuple(str(t) for t in data["tags"]),
            version=int(data["version"]),
            observed_at=_aware(data["observed_at"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise KgentsError(f"the kgents server answered a malformed entry ({type(exc).__name__}: {exc})") from None


def hit_from_dict(data: Mapping[str, Any]) -> RecallHit:
    fields = dict(data)
    score = float(fields.pop("score"))
    explain = dict(fields.pop("explain", None) or {})
    ranks = explain.pop("dense_rank", None), explain.pop("lexical_rank", None)
    explain.pop("fused", None)
    return RecallHit(entry_from_dict(fields), score, *ranks, explain or None)


def audit_from_dict(data: Mapping[str, Any]) -> AuditRecord:
    return AuditRecord(
        seq=int(data["seq"]),
        entry_id=uuid.UUID(str(data["entry_id"])),
        operation=Operation(data["operation"]),
        version=int(data["version"]),
        changed_at=datetime.fromisoformat(str(data["changed_at"])),
        old=data.get("old"),
        new=data.get("new"),
    )


def soul_from_dict(data: Mapping[str, Any]) -> SoulView:
    eigen = data.get("eigenvectors") or {}
    return SoulView(
        soul_id=str(data["soul_id"]),
        mode=str(data["mode"]),
        eigenvectors={k: (float(v["value"]), float(v["confidence"])) for k, v in eigen.items()},
        revision=int(data["revision"]),
        interactions=int(data["interactions"]),
        source=str(data["source"]),
    )

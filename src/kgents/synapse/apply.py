"""State-based apply: make one collection agree with the current rows of some entries.

The relay never trusts an event's contents: it re-reads the row, so duplicates and reordering are harmless
and a missing row means "delete the point". A point whose content hash and embedder already match keeps its
vector and gets only a new payload (no re-embedding for a confidence or lifecycle change). The index's
version guard drops any write older than what it holds. Failures are sorted into an *outage* of the index
(raised: the circuit breaker's business) and *per-entry* failures (returned: retried, then dead-lettered,
never blocking others).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from kgents.errors import BackendUnavailableError, NotFoundError
from kgents.resonance.hashing import content_hash
from kgents.resonance.lexical import document_terms
from kgents.resonance.protocols import Embedder, IndexPoint, PointPayload, VectorIndex, Vectors
from kgents.synapse.faults import MissingCollectionError
from kgents.synapse.records import EntryState, Target

T = TypeVar("T")

EmbedderResolver = Callable[[str], Embedder]
"""Embedder by name (the index records which one made each collection)."""

Fence = Callable[[], Awaitable[None]]
"""Awaited immediately before every index write; raises (the relay's ClaimLostError) when the write must not
happen. Never caught here."""


async def _unfenced() -> None:
    return None


OUTAGE_ERRORS: tuple[type[BaseException], ...] = (  # and a missing collection (see `_call`)
    BackendUnavailableError,
    ConnectionError,
    TimeoutError,
    OSError,
)


class IndexOutageError(Exception):
    """The index (not one entry) failed: nothing of the batch is counted against its entries."""

    def __init__(self, step: str, cause: BaseException) -> None:
        super().__init__(f"{step}: {describe(cause)}")
        self.step = step
        self.cause = cause


def describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:500] if text else type(exc).__name__


def is_outage(exc: BaseException) -> bool:
    return isinstance(exc, OUTAGE_ERRORS)


def payload_of(entry: EntryState, hashed: str, embedder: str) -> PointPayload:
    return PointPayload(
        persona=entry.persona,
        entry_type=entry.entry_type,
        lifecycle=entry.lifecycle,
        confidence=entry.confidence,
        tags=tuple(entry.tags),
        version=entry.version,
        content_hash=hashed,
        embedder=embedder,
        observed_at=entry.observed_at,
    )


@dataclass(slots=True)
class Plan:
    """What to do per entry: delete its point, replace only its payload, or embed and upsert it."""

    deletes: list[uuid.UUID] = field(default_factory=list)
    payloads: list[tuple[uuid.UUID, PointPayload]] = field(default_factory=list)
    embeds: list[tuple[EntryState, PointPayload]] = field(default_factory=list)
    unchanged: list[uuid.UUID] = field(default_factory=list)


def plan_apply(
    rows: Mapping[uuid.UUID, EntryState | None], existing: Mapping[uuid.UUID, PointPayload], embedder: str
) -> Plan:
    """Pure: compare the current rows with the stored payloads and decide the cheapest correct write."""
    plan = Plan()
    for entry_id, entry in rows.items():
        stored = existing.get(entry_id)
        if entry is None:
            if stored is not None:
                plan.deletes.append(entry_id)
            else:
                plan.unchanged.append(entry_id)
            continue
        wanted = payload_of(entry, content_hash(entry.content), embedder)
        if stored is None or stored.content_hash != wanted.content_hash or stored.embedder != embedder:
            plan.embeds.append((entry, wanted))
        elif stored == wanted or stored.version > wanted.version:
            plan.unchanged.append(entry_id)  # already there, or the index holds a newer state: never go back
        else:
            plan.payloads.append((entry_id, wanted))
    return plan


@dataclass(slots=True)
class ApplyResult:
    embedded: int = 0
    payload_only: int = 0
    deleted: int = 0
    unchanged: int = 0
    failed: dict[uuid.UUID, tuple[str, str]] = field(default_factory=dict)
    """Per-entry failures: entry id → (step, error)."""


async def _call(step: str, coro: Awaitable[T], collection: str) -> T:
    try:
        return await coro
    except NotFoundError as exc:  # the index raises it only for a missing collection: the index's fault
        raise IndexOutageError(step, MissingCollectionError(collection)) from exc
    except Exception as exc:
        if is_outage(exc):
            raise IndexOutageError(step, exc) from exc
        raise


LIGHT_BATCH = 16
"""Up to this many texts a light embedder (a static model) embeds on the event loop: a hand-off to a thread costs
more than the work."""


async def embed(embedder: Embedder, texts: Sequence[str]) -> Vectors:
    """`embedder.embed(texts)`, off the event loop unless the embedder is light and the batch small."""
    if len(texts) <= LIGHT_BATCH and getattr(embedder, "light", False):
        return embedder.embed(texts)
    return await asyncio.to_thread(embedder.embed, texts)


async def _embed(embedder: Embedder, entries: Sequence[EntryState], result: ApplyResult) -> list[tuple[int, object]]:
    """Vectors for the entries, batched off the event loop; an entry whose text fails is reported, not
    fatal."""
    texts = [e.content for e in entries]
    try:
        vectors = await embed(embedder, texts)
        return [(i, vectors[i]) for i in range(len(entries))]
    except Exception:
        if len(entries) == 1:
            raise
    found: list[tuple[int, object]] = []
    for i, entry in enumerate(entries):
        try:
            vector = await embed(embedder, [entry.content])
            found.append((i, vector[0]))
        except Exception as exc:
            result.failed[entry.id] = ("embed", describe(exc))
    return found


async def apply_to_target(
    index: VectorIndex,
    embedder: Embedder,
    target: Target,
    rows: Mapping[uuid.UUID, EntryState | None],
    fence: Fence = _unfenced,
    *,
    assume_new: bool = False,
) -> ApplyResult:
    """Bring `target` in line with `rows` (None = deleted), calling `fence` before each index write. Raises
    IndexOutageError when the index is down. `assume_new`: the rows were just inserted, so no point of them can
    hold their content yet: embed and upsert without looking (the index's version guard still holds)."""
    result = ApplyResult()
    if not rows:
        return result
    if assume_new:
        existing: Mapping[uuid.UUID, PointPayload] = {}
    else:
        existing = await _call("retrieve", index.retrieve(target.collection, list(rows)), target.collection)
    plan = plan_apply(rows, existing, embedder.name)
    result.unchanged = len(plan.unchanged)
    if plan.deletes:
        await fence()
        await _call("delete", index.delete(target.collection, plan.deletes), target.collection)
        result.deleted = len(plan.deletes)
    await _set_payloads(index, target, plan.payloads, result, fence)
    if plan.embeds:
        await _embed_and_upsert(index, embedder, target, plan.embeds, result, fence)
    return result


async def _set_payloads(
    index: VectorIndex,
    target: Target,
    payloads: Sequence[tuple[uuid.UUID, PointPayload]],
    result: ApplyResult,
    fence: Fence,
) -> None:
    """Rewrite the payload of points whose content (so vector) still holds; a failure is that entry's alone."""
    for entry_id, payload in payloads:
        await fence()
        try:
            written = await _call(
                "set_payload", index.set_payload(target.collection, entry_id, payload), target.collection
            )
        except IndexOutageError:
            raise
        except Exception as exc:
            result.failed[entry_id] = ("set_payload", describe(exc))
            continue
        if written:
            result.payload_only += 1


async def _embed_and_upsert(
    index: VectorIndex,
    embedder: Embedder,
    target: Target,
    embeds: Sequence[tuple[EntryState, PointPayload]],
    result: ApplyResult,
    fence: Fence,
) -> None:
    """Embed the entries whose content changed (or is new) and upsert their points."""
    entries = [entry for entry, _ in embeds]
    try:
        vectors = await _embed(embedder, entries, result)
    except Exception as exc:
        result.failed[entries[0].id] = ("embed", describe(exc))
        vectors = []
    points = [
        IndexPoint(embeds[i][0].id, vector, embeds[i][1], document_terms(embeds[i][0].content))  # type: ignore[arg-type]
        for i, vector in vectors
    ]
    result.embedded = len(points)
    await _upsert(index, target, points, result, fence)


async def _upsert(
    index: VectorIndex, target: Target, points: list[IndexPoint], result: ApplyResult, fence: Fence
) -> None:
    if not points:
        return
    await fence()
    try:
        await _call("upsert", index.upsert(target.collection, points), target.collection)
        return
    except IndexOutageError:
        raise
    except Exception:
        pass
    for point in points:  # isolate the point the index refuses
        await fence()
        try:
            await _call("upsert", index.upsert(target.collection, [point]), target.collection)
        except IndexOutageError:
            raise
        except Exception as exc:
            result.failed[point.id] = ("upsert", describe(exc))

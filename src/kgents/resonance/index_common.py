"""What both vector index adapters share: the payload schema, input checks and the version-guard plan.

Keeping these here means the embedded and the server adapter cannot drift on what is indexed, what a valid
collection name is, or when a write counts as stale.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from kgents.errors import IndexMismatchError, ValidationError
from kgents.garden.filters import EntryFilter
from kgents.garden.model import Lifecycle
from kgents.resonance.protocols import IndexPoint, PointPayload

FieldKind = Literal["keyword", "float", "integer"]

PAYLOAD_INDEXES: Mapping[str, FieldKind] = {
    "persona": "keyword",
    "entry_type": "keyword",
    "lifecycle": "keyword",
    "tags": "keyword",
    "confidence": "float",
    "version": "integer",
    "observed_at": "float",
}
"""Payload fields that searches filter on (and the version guard reads)."""

META_EMBEDDER = "kgents_embedder"
META_DIMENSION = "kgents_dimension"
META_INDEX_ID = "kgents_index_id"
"""The identity of the index a collection belongs to (recorded in the anchor's Synapse state too)."""

META_LEXICAL = "kgents_lexical"
"""The analyzer of the collection's lexical signal (absent: dense vectors only)."""

_COLLECTION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def filter_terms(flt: EntryFilter) -> FilterTerms:
    """The conditions of `flt` an index applies to payloads (the same for both adapters): the stages wanted, or
    the one left out (the default: COMPOST, cheaper to test as one exclusion than four matches), type values, tags
    every point must carry, and float ranges (gte, lt) by payload field."""
    left_out = [s.value for s in Lifecycle if s not in flt.stages]
    stages = [s.value for s in flt.stages] if len(left_out) > 1 else []
    excluded = left_out if len(left_out) == 1 else []
    ranges: dict[str, tuple[float | None, float | None]] = {}
    if flt.min_confidence is not None:
        ranges["confidence"] = (flt.min_confidence, None)
    if flt.observed_after is not None or flt.observed_before is not None:
        ranges["observed_at"] = (
            None if flt.observed_after is None else flt.observed_after.timestamp(),
            None if flt.observed_before is None else flt.observed_before.timestamp(),
        )
    return FilterTerms(stages, excluded, [t.value for t in flt.entry_types], list(flt.tags), ranges)


@dataclass(frozen=True, slots=True)
class FilterTerms:
    stages: list[str]
    excluded_stages: list[str]
    entry_types: list[str]
    tags: list[str]
    ranges: dict[str, tuple[float | None, float | None]]


def check_collection_name(name: str) -> str:
    if not _COLLECTION_RE.match(name):
        raise ValidationError(
            "collection name must be 1-64 letters, digits, '_' or '-', starting with a letter or digit"
            f" (got {name!r:.80})"
        )
    return name


def check_limit(limit: int) -> int:
    if limit < 1:
        raise ValidationError(f"search limit must be at least 1 (got {limit})")
    return limit


def check_vector(vector: Sequence[float] | np.ndarray[Any, Any], dimension: int) -> list[float]:
    """The vector as a list of floats, after checking its length and that it is finite."""
    array = np.asarray(vector, dtype=np.float32)
    if array.ndim != 1 or array.shape[0] != dimension:
        raise ValidationError(f"vector has shape {array.shape}, the collection expects ({dimension},)")
    if not np.isfinite(array).all():
        raise ValidationError("vector contains NaN or infinite values")
    return array.tolist()  # type: ignore[no-any-return]


def check_metadata(collection: str, stored: Mapping[str, Any] | None, embedder: str, dimension: int) -> None:
    """Raise `IndexMismatchError` unless the collection was made for this embedder and dimension."""
    if not stored or META_EMBEDDER not in stored:
        raise IndexMismatchError(
            f"vector collection {collection!r} records no embedder (not made by kgents?);"
            " drop it or choose another collection"
        )
    have = (str(stored[META_EMBEDDER]), int(stored.get(META_DIMENSION, -1)))
    if have != (embedder, dimension):
        raise IndexMismatchError(
            f"vector collection {collection!r} was built by embedder {have[0]} ({have[1]}-d), not {embedder}"
            f" ({dimension}-d): set KGENTS_EMBEDDER={have[0]} or run `kgents synapse reindex`"
        )


def metadata_for(embedder: str, dimension: int, index_id: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {META_EMBEDDER: embedder, META_DIMENSION: dimension}
    if index_id is not None:
        meta[META_INDEX_ID] = index_id
    return meta


def needs_stamp(collection: str, stored: Mapping[str, Any], index_id: str | None) -> bool:
    """Whether an existing collection must be stamped with `index_id` (it carries none yet); a collection
    stamped by another index identity is an `IndexMismatchError`."""
    have = stored.get(META_INDEX_ID)
    if index_id is None or have == index_id:
        return False
    if have is None:
        return True
    raise IndexMismatchError(f"vector collection {collection!r} belongs to index {str(have)[:8]}, not {index_id[:8]}")


def stored_lexical(stored: Mapping[str, Any] | None) -> bool:
    return bool((stored or {}).get(META_LEXICAL))


def lexical_flagged(payload: PointPayload, has_lexical: bool) -> PointPayload:
    """A stored payload as `plan_apply` must see it: without its lexical vector the point needs re-embedding."""
    return payload if has_lexical else replace(payload, content_hash="")


def stored_index_id(stored: Mapping[str, Any] | None) -> str | None:
    value = (stored or {}).get(META_INDEX_ID)
    return None if value is None else str(value)


def plan_writes(points: Sequence[IndexPoint], stored_versions: Mapping[uuid.UUID, int]) -> list[IndexPoint]:
    """The points to write: the last of each id in the batch, unless the index already holds a newer version.

    An equal version is rewritten (replays are harmless and a re-embed of the same version must land).
    """
    latest: dict[uuid.UUID, IndexPoint] = {}
    for point in points:
        previous = latest.get(point.id)
        if previous is None or point.payload.version >= previous.payload.version:
            latest[point.id] = point
    return [p for p in latest.values() if stored_versions.get(p.id, -1) <= p.payload.version]


def parse_id(raw: object) -> uuid.UUID:
    return raw if isinstance(raw, uuid.UUID) else uuid.UUID(str(raw))


def versions_of(records: Sequence[Any]) -> dict[uuid.UUID, int]:
    """The version each record's payload holds (-1 where none), by entry id: either index's stored records."""
    return {parse_id(r.id): int((r.payload or {}).get("version", -1)) for r in records}

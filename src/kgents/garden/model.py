"""What a persona remembers: the `GardenEntry` and the values it may hold.

Entries are immutable values; every change produces a new entry with a higher `version`. Validation lives here, in
one place, so both stores and every caller reject the same inputs with the same precise messages.
"""

from __future__ import annotations

import contextlib
import math
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from kgents.axes import AXES, unknown_axis
from kgents.clock import utcnow
from kgents.config import PERSONA_RE
from kgents.errors import ValidationError, shown

MAX_CONTENT_CHARS = 10_000
"""Longest content accepted; a garden entry is a remembered pattern, not a document."""
MAX_TAGS = 32
MAX_TAG_CHARS = 64
MAX_EVIDENCE_ITEMS = 256
"""Evidence kept on an entry; nurture drops the oldest beyond this (the audit trail keeps every one)."""
MAX_EVIDENCE_CHARS = 2_000
MAX_AFFINITIES = 32
MAX_AFFINITY_NAME_CHARS = 64


E = TypeVar("E", bound=StrEnum)


class EntryType(StrEnum):
    PREFERENCE = "PREFERENCE"
    PATTERN = "PATTERN"
    VALUE = "VALUE"
    BEHAVIOR = "BEHAVIOR"
    INSIGHT = "INSIGHT"


class Lifecycle(StrEnum):
    SEED = "SEED"
    SAPLING = "SAPLING"
    TREE = "TREE"
    FLOWER = "FLOWER"
    COMPOST = "COMPOST"


def parse_enum(enum: type[E], value: object, what: str) -> E:
    """`value` as a member of `enum` (case-insensitive), or a ValidationError listing the choices."""
    if isinstance(value, enum):
        return value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return enum(value)  # the exact value (what stores and the wire carry): one look-up, no scan
        wanted = value.strip().lower()
        for member in enum:
            if str(member.value).lower() == wanted:
                return member
    choices = ", ".join(m.value for m in enum)
    raise ValidationError(f"{what} must be one of {choices} (got {shown(value)})")


def check_enums(enum: type[E], values: object, what: str) -> tuple[E, ...]:
    """A list of `enum` members (case-insensitive names); one bare string is an error, not a list of letters."""
    return tuple(parse_enum(enum, v, what) for v in as_tuple(values, what))


_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
"""Control characters refused in content, evidence and queries: every C0 and C1 one except tab, newline, CR."""
_CONTROL_ANYWHERE = re.compile("[\x00-\x1f\x7f-\x9f]")
"""Control characters refused in tags (and names): all of them."""


def check_text(text: str, what: str, *, line_breaks: bool = True) -> str:
    """`text` if it is valid Unicode without control characters (tab, newline and CR allowed when `line_breaks`).

    A lone surrogate is what invalid UTF-8 in a command-line argument becomes (surrogateescape) or what a caller
    built by hand: no database can store it, so it is refused here, before anything is written.
    """
    if _SURROGATE.search(text):
        raise ValidationError(f"{what} is not valid Unicode (a lone surrogate: invalid UTF-8 in the input?)")
    control = (_CONTROL_IN_TEXT if line_breaks else _CONTROL_ANYWHERE).search(text)
    if control:
        raise ValidationError(f"{what} must not contain the control character U+{ord(control[0]):04X}")
    return text


def as_tuple(values: object, what: str) -> tuple[Any, ...]:
    """A list-like argument as a tuple; a single string (which would iterate as letters) is an error."""
    if isinstance(values, str | bytes | bytearray | Mapping) or not isinstance(values, Iterable):
        raise ValidationError(f"{what} must be a list (got {shown(values)})")
    return tuple(values)


def check_content(content: object) -> str:
    if not isinstance(content, str):
        raise ValidationError(f"content must be text (got {type(content).__name__})")
    if not content.strip():
        raise ValidationError("content must not be empty or only whitespace")
    if len(content) > MAX_CONTENT_CHARS:
        raise ValidationError(f"content is {len(content):,} characters; the limit is {MAX_CONTENT_CHARS:,}")
    return check_text(content, "content")


def check_confidence(value: object, what: str = "confidence") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{what} must be a number in [0, 1] (got {shown(value)})")
    number = float(value)
    if math.isnan(number):
        raise ValidationError(f"{what} must be a number in [0, 1] (got NaN)")
    if not 0.0 <= number <= 1.0:
        raise ValidationError(f"{what} must be in [0, 1] (got {number:g})")
    return number


def check_tags(tags: object) -> tuple[str, ...]:
    """Tags stripped and de-duplicated (first occurrence wins), each checked."""
    seen: dict[str, None] = {}
    for tag in as_tuple(tags, "tags"):
        if not isinstance(tag, str):
            raise ValidationError(f"each tag must be text (got {shown(tag)})")
        clean = check_text(tag, "a tag", line_breaks=False).strip()
        if not clean:
            raise ValidationError("a tag must not be empty")
        if len(clean) > MAX_TAG_CHARS:
            raise ValidationError(f"tag {clean[:20]!r}... is {len(clean)} characters; the limit is {MAX_TAG_CHARS}")
        if any(ch.isspace() for ch in clean) or "," in clean:
            raise ValidationError(f"tag {shown(clean)} must not contain spaces or commas")
        seen.setdefault(clean, None)
    if len(seen) > MAX_TAGS:
        raise ValidationError(f"{len(seen)} tags given; the limit is {MAX_TAGS}")
    return tuple(seen)


def check_evidence(evidence: object) -> tuple[str, ...]:
    items: list[str] = []
    for item in as_tuple(evidence, "evidence"):
        if not isinstance(item, str) or not item.strip():
            raise ValidationError(f"each evidence item must be non-empty text (got {shown(item)})")
        if len(item) > MAX_EVIDENCE_CHARS:
            raise ValidationError(f"an evidence item is {len(item):,} characters; the limit is {MAX_EVIDENCE_CHARS:,}")
        items.append(check_text(item, "evidence"))
    if len(items) > MAX_EVIDENCE_ITEMS:
        raise ValidationError(f"{len(items)} evidence items given; the limit is {MAX_EVIDENCE_ITEMS}")
    return tuple(items)


def check_affinities(affinities: Mapping[Any, Any]) -> dict[str, float]:
    if not isinstance(affinities, Mapping):
        raise ValidationError("eigenvector_affinities must be a mapping of axis name to a number in [0, 1]")
    if len(affinities) > MAX_AFFINITIES:
        raise ValidationError(f"{len(affinities)} eigenvector affinities given; the limit is {MAX_AFFINITIES}")
    clean: dict[str, float] = {}
    for name, value in affinities.items():
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_AFFINITY_NAME_CHARS:
            raise ValidationError(
                f"an eigenvector axis name must be 1-{MAX_AFFINITY_NAME_CHARS} characters (got {shown(name)})"
            )
        check_text(name, "an eigenvector axis name", line_breaks=False)
        if name.strip() not in AXES:
            raise unknown_axis(name.strip())
        clean[name.strip()] = check_confidence(value, f"eigenvector affinity {name.strip()!r}")
    return clean


def check_persona(persona: object) -> str:
    if not isinstance(persona, str) or not PERSONA_RE.fullmatch(persona):
        raise ValidationError(
            "persona must be 1-64 characters of letters, digits, '_', '.' or '-', starting with a letter or digit"
            f" (got {shown(persona)})"
        )
    return persona


def _check_time(value: object, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise ValidationError(f"{what} must be a datetime (got {shown(value)})")
    if value.tzinfo is None:
        raise ValidationError(f"{what} must be timezone-aware")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class GardenEntry:
    """One remembered preference, pattern, value, behavior or insight of one persona."""

    persona: str
    content: str
    entry_type: EntryType
    lifecycle: Lifecycle = Lifecycle.SEED
    confidence: float = 0.5
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    planted_at: datetime = field(default_factory=utcnow)
    last_nurtured: datetime | None = None
    eigenvector_affinities: Mapping[str, float] = field(default_factory=dict)
    evidence: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    version: int = 1
    observed_at: datetime | None = None
    """When what the entry says was observed (e.g. the date of an imported conversation); defaults to planted_at."""

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "persona", check_persona(self.persona))
        set_(self, "content", check_content(self.content))
        set_(self, "entry_type", parse_enum(EntryType, self.entry_type, "entry_type"))
        set_(self, "lifecycle", parse_enum(Lifecycle, self.lifecycle, "lifecycle"))
        set_(self, "confidence", check_confidence(self.confidence))
        if not isinstance(self.id, uuid.UUID):
            try:
                set_(self, "id", uuid.UUID(str(self.id)))
            except ValueError:
                raise ValidationError(f"id must be a UUID (got {shown(self.id)})") from None
        planted = _check_time(self.planted_at, "planted_at")
        set_(self, "planted_at", planted)
        nurtured = planted if self.last_nurtured is None else _check_time(self.last_nurtured, "last_nurtured")
        set_(self, "last_nurtured", nurtured)
        observed = planted if self.observed_at is None else _check_time(self.observed_at, "observed_at")
        set_(self, "observed_at", observed)
        set_(self, "eigenvector_affinities", check_affinities(self.eigenvector_affinities))
        set_(self, "evidence", check_evidence(self.evidence))
        set_(self, "tags", check_tags(self.tags))
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            raise ValidationError(f"version must be a positive integer (got {shown(self.version)})")

    @classmethod
    def stored(cls, **fields: Any) -> GardenEntry:
        """An entry as a store read it back: every field given, of its type, already checked when it was written
        (the database's constraints hold it since), so nothing is validated again. Stores only (and
        `kgents.memory.wire.entry_from_dict`, which reads what a server's store sent)."""
        entry = object.__new__(cls)
        for name, value in fields.items():
            object.__setattr__(entry, name, value)
        return entry

    @property
    def nurtured_at(self) -> datetime:
        """`last_nurtured`, never None once constructed."""
        assert self.last_nurtured is not None
        return self.last_nurtured

    @property
    def observed(self) -> datetime:
        """`observed_at`, never None once constructed."""
        assert self.observed_at is not None
        return self.observed_at

    def evolve(self, **changes: Any) -> GardenEntry:
        """A validated copy with `changes` applied and the version bumped. Affinities on an axis that is no longer
        accepted (stored before axes were checked) stay as they are unless the change replaces them."""
        kept = self.eigenvector_affinities
        if "eigenvector_affinities" in changes or all(axis in AXES for axis in kept):
            return replace(self, version=self.version + 1, **changes)
        known = {axis: value for axis, value in kept.items() if axis in AXES}
        entry = replace(self, version=self.version + 1, eigenvector_affinities=known, **changes)
        object.__setattr__(entry, "eigenvector_affinities", dict(kept))
        return entry

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the shape of `--json` output and of outbox payloads)."""
        return {
            "id": str(self.id),
            "persona": self.persona,
            "content": self.content,
            "entry_type": self.entry_type.value,
            "lifecycle": self.lifecycle.value,
            "confidence": self.confidence,
            "planted_at": self.planted_at.isoformat(),
            "last_nurtured": self.nurtured_at.isoformat(),
            "eigenvector_affinities": dict(self.eigenvector_affinities),
            "evidence": list(self.evidence),
            "tags": list(self.tags),
            "version": self.version,
            "observed_at": self.observed.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GardenEntry:
        try:
            return cls(
                id=uuid.UUID(str(data["id"])),
                persona=data["persona"],
                content=data["content"],
                entry_type=data["entry_type"],
                lifecycle=data["lifecycle"],
                confidence=data["confidence"],
                planted_at=_parse_time(data["planted_at"]),
                last_nurtured=_parse_time(data["last_nurtured"]),
                eigenvector_affinities=data.get("eigenvector_affinities") or {},
                evidence=tuple(data.get("evidence") or ()),
                tags=tuple(data.get("tags") or ()),
                version=int(data["version"]),
                observed_at=None if data.get("observed_at") is None else _parse_time(data["observed_at"]),
            )
        except KeyError as exc:
            raise ValidationError(f"garden entry data lacks the field {exc.args[0]!r}") from None


def _parse_time(value: object) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValidationError(f"expected a timestamp (got {shown(value)})")

"""`SoulState`: who a K-gent is right now (dialogue mode, personality eigenvectors, session counters).

The state is an immutable value with one strict JSON form. The same bytes live in the Spark cache and in the
anchor snapshot, so parsing is the single gate: unknown fields, a newer schema, wrong types or out-of-range
numbers raise `SoulDataError` (a `ValidationError`) with a message that names the field, never a crash.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from kgents.axes import DEFAULT_AXES, unknown_axis
from kgents.clock import utcnow
from kgents.config import PERSONA_RE
from kgents.errors import ValidationError, shown

SCHEMA_VERSION = 1
MAX_JSON_BYTES = 64 * 1024
"""A soul is small; anything larger in a cache key is not ours."""
MAX_COUNTER = 2**62


class SoulDataError(ValidationError):
    """Stored soul data (cache or snapshot) cannot be read as a `SoulState`."""


class DialogueMode(StrEnum):
    REFLECT = "REFLECT"
    ADVISE = "ADVISE"
    CHALLENGE = "CHALLENGE"
    EXPLORE = "EXPLORE"


DEFAULT_CONFIDENCE = 0.5
"""How sure a fresh soul is of its default axis values: a prior, to be moved by evidence."""

MODE_AFFINITY: Mapping[DialogueMode, tuple[str, ...]] = MappingProxyType(
    {
        DialogueMode.REFLECT: ("categorical", "aesthetic"),
        DialogueMode.ADVISE: ("gratitude", "joy"),
        DialogueMode.CHALLENGE: ("heterarchy", "generativity"),
        DialogueMode.EXPLORE: ("categorical", "joy"),
    }
)


def parse_mode(value: object) -> DialogueMode:
    """`value` as a DialogueMode (any case), or a ValidationError listing the choices."""
    if isinstance(value, DialogueMode):
        return value
    if isinstance(value, str):
        try:
            return DialogueMode(value.strip().upper())
        except ValueError:
            pass
    choices = ", ".join(m.value for m in DialogueMode)
    raise ValidationError(f"mode must be one of {choices} (got {shown(value)})")


def check_soul_id(soul_id: object) -> str:
    if not isinstance(soul_id, str) or not PERSONA_RE.match(soul_id):
        raise ValidationError(
            "soul id must be 1-64 characters of letters, digits, '_', '.' or '-', starting with a letter"
            " or digit"
            f" (got {shown(soul_id)})"
        )
    return soul_id


def check_unit(value: object, what: str) -> float:
    """A number in [0, 1] (NaN and infinities rejected), or a ValidationError naming `what`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{what} must be a number in [0, 1] (got {shown(value)})")
    number = float(value)
    if math.isnan(number) or not 0.0 <= number <= 1.0:
        raise ValidationError(f"{what} must be in [0, 1] (got {number:g})")
    return number


def check_delta(value: object, what: str) -> float:
    """A change of a unit value: a finite number (NaN and infinities rejected), or a ValidationError naming
    `what`; the result is clamped to [0, 1] by its user."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{what} must be a number (got {shown(value)})")
    number = float(value)
    if not math.isfinite(number):
        raise ValidationError(f"{what} must be a finite number (got {number:g})")
    return number


@dataclass(frozen=True, slots=True)
class Eigenvector:
    """Where the soul stands on one axis (`value`) and how sure it is of that (`confidence`)."""

    value: float
    confidence: float = DEFAULT_CONFIDENCE

    def checked(self, axis: str) -> Eigenvector:
        return Eigenvector(
            check_unit(self.value, f"eigenvector {axis!r} value"),
            check_unit(self.confidence, f"eigenvector {axis!r} confidence"),
        )


def default_eigenvectors() -> dict[str, Eigenvector]:
    return {a.name: Eigenvector(a.default, DEFAULT_CONFIDENCE) for a in DEFAULT_AXES}


def new_session_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class SoulState:
    """The whole session state of one soul; `revision` counts saves and guards concurrent writers."""

    soul_id: str
    persona: str
    mode: DialogueMode = DialogueMode.REFLECT
    eigenvectors: Mapping[str, Eigenvector] = field(default_factory=default_eigenvectors)
    session_id: str = field(default_factory=new_session_id)
    interactions: int = 0
    tokens: int = 0
    last_interaction: datetime | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    revision: int = 0
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        check_soul_id(self.soul_id)
        if not isinstance(self.persona, str) or not PERSONA_RE.match(self.persona):
            raise ValidationError(f"persona is not a valid persona name (got {shown(self.persona)})")
        object.__setattr__(self, "mode", parse_mode(self.mode))
        if not isinstance(self.eigenvectors, Mapping):
            raise ValidationError("eigenvectors must be a mapping of axis name to value and confidence")
        axes: dict[str, Eigenvector] = {}
        for name, vector in self.eigenvectors.items():
            if not isinstance(name, str) or not name.isidentifier() or len(name) > 64:
                raise ValidationError(f"eigenvector axis name {shown(name)} is not a plain identifier")
            if not isinstance(vector, Eigenvector):
                raise ValidationError(f"eigenvector {name!r} must be an Eigenvector (got {shown(vector)})")
            axes[name] = vector.checked(name)
        object.__setattr__(self, "eigenvectors", MappingProxyType(axes))
        for name in ("interactions", "tokens", "revision"):
            count = getattr(self, name)
            if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_COUNTER:
                raise ValidationError(f"{name} must be a whole number >= 0 (got {shown(count)})")
        if not isinstance(self.session_id, str) or not 1 <= len(self.session_id) <= 64:
            raise ValidationError(f"session_id must be 1-64 characters (got {shown(self.session_id)})")
        for name in ("created_at", "updated_at", "last_interaction"):
            when = getattr(self, name)
            if when is None and name == "last_interaction":
                continue
            if not isinstance(when, datetime) or when.tzinfo is None:
                raise ValidationError(f"{name} must be a timezone-aware datetime (got {shown(when)})")
        if self.schema_version != SCHEMA_VERSION:
            raise SoulDataError(
                f"soul schema version {self.schema_version} is not {SCHEMA_VERSION}; "
                "it was written by another kgents version"
            )

    # -- changes (each returns a new state; the service saves it) --------------------------------------------
    def evolve(self, **changes: Any) -> SoulState:
        return replace(self, **changes)

    def with_mode(self, mode: DialogueMode | str) -> SoulState:
        return replace(self, mode=parse_mode(mode))

    def with_eigenvector(self, axis: str, value: float | None = None, confidence: float | None = None) -> SoulState:
        """Move one existing axis; an unknown axis is rejected with the list of known ones."""
        current = self.eigenvectors.get(axis)
        if current is None:
            raise unknown_axis(axis, self.eigenvectors)
        moved = Eigenvector(
            current.value if value is None else check_unit(value, f"eigenvector {axis!r} value"),
            current.confidence if confidence is None else check_unit(confidence, f"eigenvector {axis!r} confidence"),
        )
        return replace(self, eigenvectors={**self.eigenvectors, axis: moved})

    def nudged(self, shifts: Mapping[str, float]) -> SoulState:
        """Existing axes moved by their deltas (each a finite number), clamped to [0, 1]. Every shift is
        checked before any is applied (NaN or an infinity is refused, never stored as 0 or 1): the one rule behind
        every door (HTTP, MCP, `Memory.nudge`, the dream)."""
        if not isinstance(shifts, Mapping):
            raise ValidationError("shifts must be a mapping of axis → delta")
        deltas = {str(a): check_delta(d, f"the nudge of eigenvector {a!r:.40}") for a, d in shifts.items()}
        state = self
        for axis, delta in deltas.items():
            current = state.eigenvectors.get(axis)
            if current is None:
                raise unknown_axis(axis, state.eigenvectors)
            state = state.with_eigenvector(axis, round(min(1.0, max(0.0, current.value + delta)), 6))
        return state

    def with_interaction(self, tokens: int = 0, when: datetime | None = None) -> SoulState:
        if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
            raise ValidationError(f"tokens must be a whole number >= 0 (got {shown(tokens)})")
        return replace(
            self,
            interactions=self.interactions + 1,
            tokens=self.tokens + tokens,
            last_interaction=when or utcnow(),
        )

    def with_new_session(self) -> SoulState:
        return replace(self, session_id=new_session_id(), interactions=0, tokens=0)

    # -- JSON ------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "soul_id": self.soul_id,
            "persona": self.persona,
            "mode": self.mode.value,
            "eigenvectors": {k: {"value": v.value, "confidence": v.confidence} for k, v in self.eigenvectors.items()},
            "session_id": self.session_id,
            "interactions": self.interactions,
            "tokens": self.tokens,
            "last_interaction": _iso(self.last_interaction),
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "revision": self.revision,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_dict(cls, data: object) -> SoulState:
        """Strictly: every field present with its type, nothing unknown; SoulDataError otherwise."""
        if not isinstance(data, dict):
            raise SoulDataError(f"soul data must be a JSON object (got {type(data).__name__})")
        version = data.get("schema_version")
        if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
            raise SoulDataError(
                f"soul data has schema version {version}; this kgents reads up to {SCHEMA_VERSION} (upgrade)"
            )
        missing = sorted(_FIELDS - data.keys())
        unknown = sorted(data.keys() - _FIELDS)
        if missing:
            raise SoulDataError(f"soul data lacks field(s): {', '.join(missing)}")
        if unknown:
            raise SoulDataError(f"soul data has unknown field(s): {', '.join(map(str, unknown))[:200]}")
        try:
            raw_axes = data["eigenvectors"]
            if not isinstance(raw_axes, dict):
                raise ValidationError("eigenvectors must be a JSON object")
            axes: dict[str, Eigenvector] = {}
            for name, item in raw_axes.items():
                if not isinstance(item, dict) or set(item) != {"value", "confidence"}:
                    raise ValidationError(f"eigenvector {name!r} must be an object with value and confidence")
                axes[name] = Eigenvector(item["value"], item["confidence"])
            return cls(
                schema_version=data["schema_version"],
                soul_id=data["soul_id"],
                persona=data["persona"],
                mode=data["mode"],
                eigenvectors=axes,
                session_id=data["session_id"],
                interactions=data["interactions"],
                tokens=data["tokens"],
                last_interaction=(
                    None
                    if data["last_interaction"] is None
                    else _parse_time(data["last_interaction"], "last_interaction")
                ),
                created_at=_parse_time(data["created_at"], "created_at"),
                updated_at=_parse_time(data["updated_at"], "updated_at"),
                revision=data["revision"],
            )
        except SoulDataError:
            raise
        except ValidationError as exc:
            raise SoulDataError(f"soul data is invalid: {exc}") from None

    @classmethod
    def from_json(cls, text: str | bytes) -> SoulState:
        if len(text) > MAX_JSON_BYTES:
            raise SoulDataError(f"soul data is {len(text):,} bytes; the limit is {MAX_JSON_BYTES:,}")
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SoulDataError(f"soul data is not valid JSON: {exc}") from None
        return cls.from_dict(data)


_FIELDS = frozenset(SoulState.__dataclass_fields__)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).isoformat(timespec="microseconds")


def _parse_time(value: object, what: str) -> datetime:
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be an ISO-8601 time (got {shown(value)})")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{what} is not an ISO-8601 time (got {shown(value)})") from None
    if when.tzinfo is None:
        raise ValidationError(f"{what} has no time zone (got {shown(value)})")
    return when

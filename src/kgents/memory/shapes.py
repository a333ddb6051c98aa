"""Request shapes declared once: each a table of field name → `Field` (its kind, default, whether it is required),
read by `read` to check a request body and by `schema_of` to describe it as JSON Schema (the server's
`/openapi.json`), so what the API says and what it accepts cannot drift apart.

A kind checks one value and says what it is (`Str`, `Int`, `Number`, `Bool`, `Time`, `Uuid`, `List`, `ObjectOf`,
`Nested`); `Unchecked` documents a value that the memory itself checks (its rules are richer than a type). Every
refusal is a `ValidationError` naming the field, with the messages of `kgents.memory.wire`'s readers. Plain
dataclasses and dicts: the thin HTTP client imports this module too.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from kgents.errors import ValidationError


class Kind(Protocol):
    """What one value is: `read` checks and converts it (`label` names it in an error, `what` is the request),
    `schema` says it as JSON Schema."""

    def read(self, value: object, label: str, what: str) -> Any: ...

    def schema(self) -> dict[str, Any]: ...


def as_int(value: object, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{what} must be a whole number in [{low}, {high}] (got {value!r:.40})")
    return value


def as_number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{what} must be a number (got {value!r:.40})")
    return float(value)


def as_str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a string (got {type(value).__name__})")
    return value


def as_time(value: object, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(as_str(value, what))
    except ValueError:
        raise ValidationError(f"{what} must be an ISO 8601 time (got {value!r:.40})") from None
    if parsed.tzinfo is None:
        raise ValidationError(f"{what} must carry a timezone (got {value!r:.40})")
    return parsed


def as_list(value: object, what: str) -> tuple[Any, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValidationError(f"{what} must be a list (got {type(value).__name__})")
    return tuple(value)


def parse_uuid(value: object, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(as_str(value, what))
    except ValueError:
        raise ValidationError(f"{what} must be a UUID (got {value!r:.40})") from None


@dataclass(frozen=True, slots=True)
class Str:
    def read(self, value: object, label: str, what: str) -> str:
        return as_str(value, label)

    def schema(self) -> dict[str, Any]:
        return {"type": "string"}


@dataclass(frozen=True, slots=True)
class Int:
    low: int
    high: int

    def read(self, value: object, label: str, what: str) -> int:
        return as_int(value, label, self.low, self.high)

    def schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.low, "maximum": self.high}


@dataclass(frozen=True, slots=True)
class Number:
    low: float | None = None
    high: float | None = None
    unit: str = ""
    """Said after the range when a value is outside it (`seconds`)."""

    def read(self, value: object, label: str, what: str) -> float:
        number = as_number(value, label)
        if self.low is not None and self.high is not None and not self.low <= number <= self.high:
            raise ValidationError(f"{label} must be in [{self.low:g}, {self.high:g}]{' ' * bool(self.unit)}{self.unit}")
        return number

    def schema(self) -> dict[str, Any]:
        bounds = {"minimum": self.low, "maximum": self.high}
        return {"type": "number", **{k: v for k, v in bounds.items() if v is not None}}


@dataclass(frozen=True, slots=True)
class Bool:
    def read(self, value: object, label: str, what: str) -> bool:
        if not isinstance(value, bool):
            raise ValidationError(f"{label} must be true or false")
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


@dataclass(frozen=True, slots=True)
class Time:
    def read(self, value: object, label: str, what: str) -> datetime | None:
        return as_time(value, label)

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "date-time", "description": "ISO 8601 with a timezone"}


@dataclass(frozen=True, slots=True)
class Uuid:
    def read(self, value: object, label: str, what: str) -> uuid.UUID:
        return parse_uuid(value, label)

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "uuid"}


@dataclass(frozen=True, slots=True)
class Unchecked:
    """A value passed on as it is, for the memory to check by its own rules; `like` says what it should be."""

    like: Kind

    def read(self, value: object, label: str, what: str) -> object:
        return value

    def schema(self) -> dict[str, Any]:
        return self.like.schema()


@dataclass(frozen=True, slots=True)
class List:
    """A JSON array (null reads as empty); each item read by `items`, as `item {i}` of the request."""

    items: Kind

    def read(self, value: object, label: str, what: str) -> tuple[Any, ...]:
        return tuple(self.items.read(x, label, f"item {i}") for i, x in enumerate(as_list(value, label)))

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "items": self.items.schema()}


@dataclass(frozen=True, slots=True)
class ObjectOf:
    """A JSON object of name → value (`values`: None, the memory checks them); `refused` is the error of anything
    else, with `{what}` and `{label}` filled in."""

    values: Kind | None
    refused: str

    def read(self, value: object, label: str, what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValidationError(self.refused.format(what=what, label=label))
        if self.values is None:
            return value
        return {str(k): self.values.read(v, str(k), what) for k, v in value.items()}

    def schema(self) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": {} if self.values is None else self.values.schema()}


@dataclass(frozen=True, slots=True)
class Nested:
    """A JSON object of its own `shape`, made into what `build` makes of its fields."""

    shape: Shape
    build: Callable[..., Any]

    def read(self, value: object, label: str, what: str) -> Any:
        return self.build(**read(self.shape, value, what))

    def schema(self) -> dict[str, Any]:
        return schema_of(self.shape)


class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _NoDefault()
"""A field without a default: absent, it is left out of what `read` returns (or refused, if required)."""


@dataclass(frozen=True, slots=True)
class Field:
    kind: Kind
    default: Any = NO_DEFAULT
    """Read in place of an absent field (so it is checked like a sent one: a None default of a kind that refuses
    null makes the field required in effect, refused by its kind's message)."""
    required: bool = False
    """Absent without a default: `{what} has no {name}`."""
    nullable: bool = False
    """null reads as None, unchecked."""
    description: str = ""


@dataclass(frozen=True, slots=True)
class Shape:
    """A JSON object request: its `fields`; `what` names it in errors (`the recall`); `prefix` goes before a
    field's name in them (`filters.`). A field not in the table (`extra`): `refused` here; passed on to the
    `memory`, which refuses it by name (so the documented shape is closed too); or passed on and `ignored`
    (the documented shape is open)."""

    what: str
    fields: Mapping[str, Field]
    prefix: str = ""
    extra: Literal["refused", "memory", "ignored"] = "refused"
    description: str = ""
    names: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", frozenset(self.fields))


def fields_of(body: object, allowed: frozenset[str], what: str) -> dict[str, Any]:
    """A JSON object with only `allowed` keys (a typo is an error, never silently ignored)."""
    if not isinstance(body, dict):
        raise ValidationError(f"{what} must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ValidationError(f"{what} has unknown field(s): {', '.join(unknown)}")
    return body


def read(shape: Shape, body: object, what: str | None = None) -> dict[str, Any]:
    """`body` checked against `shape` (`what`: its name in errors, by default the shape's): every field read by
    its kind, defaults filled in; an unknown field, a wrong type or a missing required field is refused."""
    what = shape.what if what is None else what
    if shape.extra != "refused":
        fields_of(body, frozenset(body) if isinstance(body, dict) else frozenset(), what)
    else:
        fields_of(body, shape.names, what)
    assert isinstance(body, dict)
    found: dict[str, Any] = {k: v for k, v in body.items() if k not in shape.names}
    for name, spec in shape.fields.items():
        if name in body:
            value = body[name]
        elif spec.default is not NO_DEFAULT:
            value = spec.default
        elif spec.required:
            raise ValidationError(f"{what} has no {name}")
        else:
            continue
        found[name] = None if value is None and spec.nullable else spec.kind.read(value, shape.prefix + name, what)
    return found


def schema_of(shape: Shape) -> dict[str, Any]:
    """`shape` as a JSON Schema (2020-12, as OpenAPI 3.1 uses it)."""
    properties = {name: field_schema(spec) for name, spec in shape.fields.items()}
    required = [name for name, spec in shape.fields.items() if is_required(spec)]
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    schema["additionalProperties"] = shape.extra == "ignored"
    if required:
        schema["required"] = required
    if shape.description:
        schema["description"] = shape.description
    return schema


def is_required(spec: Field) -> bool:
    """Whether a valid request must carry the field: required, or defaulting to a null its kind refuses."""
    return spec.required or (spec.default is None and not spec.nullable and _refuses_null(spec.kind))


def _refuses_null(kind: Kind) -> bool:
    try:
        kind.read(None, "", "")
    except ValidationError:
        return True
    return False


def field_schema(spec: Field) -> dict[str, Any]:
    schema = dict(spec.kind.schema())
    if spec.nullable:
        schema = {"anyOf": [schema, {"type": "null"}]}
    if spec.default is not NO_DEFAULT and spec.default is not None:
        schema["default"] = spec.default
    if spec.description:
        schema["description"] = spec.description
    return schema

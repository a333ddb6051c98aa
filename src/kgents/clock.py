"""The one clock every capability stamps records with: timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from kgents.errors import ValidationError


def utcnow() -> datetime:
    return datetime.now(UTC)


def check_asked_at(asked_at: object) -> datetime | None:
    """A recall's `asked_at`: None, or a timezone-aware datetime (naive times are refused, never guessed)."""
    if asked_at is not None and (not isinstance(asked_at, datetime) or asked_at.tzinfo is None):
        raise ValidationError("asked_at must be a timezone-aware datetime")
    return asked_at

"""One filter type for every way entries are selected: `list`, `recall` and the index's own search.

A filter never names a persona: the persona is the scope of the memory, the store or the search it is applied
in, and is checked there once. COMPOST entries are left out unless the filter names COMPOST among its
lifecycles or sets `include_compost`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kgents.errors import ValidationError
from kgents.garden.model import (
    EntryType,
    GardenEntry,
    Lifecycle,
    check_confidence,
    check_enums,
    check_tags,
    check_text,
)


@dataclass(frozen=True, slots=True)
class EntryFilter:
    """Which entries: every given condition must hold; an empty filter is every live (non-COMPOST) entry."""

    lifecycles: tuple[Lifecycle, ...] = ()
    entry_types: tuple[EntryType, ...] = ()
    tags: tuple[str, ...] = ()
    """Entries must carry every one of these tags."""
    min_confidence: float | None = None
    text: str | None = None
    """Case-insensitive substring of the content (list only; recall has its query)."""
    observed_after: datetime | None = None
    observed_before: datetime | None = None
    include_compost: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "lifecycles", check_enums(Lifecycle, self.lifecycles, "lifecycles"))
        object.__setattr__(self, "entry_types", check_enums(EntryType, self.entry_types, "entry_types"))
        object.__setattr__(self, "tags", check_tags(self.tags))
        if self.text is not None:
            if not isinstance(self.text, str):
                raise ValidationError(f"text must be a string (got {type(self.text).__name__})")
            check_text(self.text, "the text filter")
        if self.min_confidence is not None:
            object.__setattr__(self, "min_confidence", check_confidence(self.min_confidence, "min_confidence"))
        for name in ("observed_after", "observed_before"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
                raise ValidationError(f"{name} must be a timezone-aware datetime")
        if not isinstance(self.include_compost, bool):
            raise ValidationError("include_compost must be true or false")

    @property
    def stages(self) -> tuple[Lifecycle, ...]:
        """The lifecycles that pass: the named ones, else every stage but COMPOST unless it is included."""
        if self.lifecycles:
            return self.lifecycles
        return tuple(s for s in Lifecycle if s is not Lifecycle.COMPOST or self.include_compost)

    def accepts(self, entry: GardenEntry) -> bool:
        """The filter applied to the truth (the index applies the same conditions to its payloads)."""
        when = entry.observed
        return (
            entry.lifecycle in self.stages
            and (not self.entry_types or entry.entry_type in self.entry_types)
            and all(t in entry.tags for t in self.tags)
            and (self.min_confidence is None or entry.confidence >= self.min_confidence)
            and (self.text is None or self.text.lower() in entry.content.lower())
            and (self.observed_after is None or when >= self.observed_after)
            and (self.observed_before is None or when < self.observed_before)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "lifecycles": [s.value for s in self.lifecycles],
            "entry_types": [t.value for t in self.entry_types],
            "tags": list(self.tags),
            "min_confidence": self.min_confidence,
            "text": self.text,
            "observed_after": None if self.observed_after is None else self.observed_after.isoformat(),
            "observed_before": None if self.observed_before is None else self.observed_before.isoformat(),
            "include_compost": self.include_compost,
        }

"""A bounded anchor: what the measuring relay prunes, at most every `PRUNE_INTERVAL_S`, a bounded number of rows at
a time (so a prune never holds the anchor for long).

- tombstones (`garden_tombstone`) once every index has applied them: older than `TOMBSTONE_GRACE_S`, no outbox
  event or dead letter left for the id, and the id's bucket measured all matched since its last change (so the
  index was seen not to hold the point); never while a reindex builds a second collection;
- dead letters older than `dead_letter_keep_days` (KGENTS_DEAD_LETTER_KEEP_DAYS, default 30);
- audit rows older than `audit_keep_days` (KGENTS_AUDIT_KEEP_DAYS) and past the newest `audit_keep_rows`
  (KGENTS_AUDIT_KEEP_ROWS); by default the audit keeps everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kgents.config import DEFAULT_DEAD_LETTER_KEEP_DAYS

TOMBSTONE_GRACE_S = 3600.0
PRUNE_INTERVAL_S = 600.0
PRUNE_BATCH = 5_000


@dataclass(frozen=True, slots=True)
class Retention:
    audit_keep_days: float | None = None
    audit_keep_rows: int | None = None
    dead_letter_keep_days: float | None = DEFAULT_DEAD_LETTER_KEEP_DAYS
    tombstone_grace_s: float = TOMBSTONE_GRACE_S

    @classmethod
    def of(cls, settings: Any) -> Retention:
        return cls(settings.audit_keep_days, settings.audit_keep_rows, settings.dead_letter_keep_days)


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """The retention as instants and a row count, for one pass of `ledger.prune`."""

    collection: str
    tombstones_before: datetime
    dead_letters_before: datetime | None
    audit_before: datetime | None
    audit_keep_rows: int | None
    limit: int = PRUNE_BATCH


@dataclass(frozen=True, slots=True)
class Pruned:
    tombstones: int = 0
    dead_letters: int = 0
    audit: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"tombstones": self.tombstones, "dead_letters": self.dead_letters, "audit": self.audit}


def cutoffs(retention: Retention, collection: str, now: datetime) -> Cutoffs:
    """Pure: the instants before which rows go."""

    def days_ago(days: float | None) -> datetime | None:
        return None if days is None else now - timedelta(days=days)

    return Cutoffs(
        collection,
        now - timedelta(seconds=retention.tombstone_grace_s),
        days_ago(retention.dead_letter_keep_days),
        days_ago(retention.audit_keep_days),
        retention.audit_keep_rows,
    )

"""The dream's side of an anchor (`store.dream_ledger()`): what changed since the last dream, the bulk decay, and the
dream's own bookkeeping, kept in tables of their own (migration 0011) and never in the user's tags or versions.

- `dream_pending` holds one row per entry changed since the last dream (a trigger writes it with the garden row: a
  plant, or a change of content, type, tags, evidence, affinities, last nurture or observed time; a change of
  confidence or stage alone, such as a decay, is not new). A dream reads it (`pending`), weighs those entries and
  their neighbours, and removes the rows it weighed at the version it weighed (`settle`): a change made meanwhile
  stays for the next dream.
- `decay` lowers, in one statement, every live entry not nurtured for `stale_days` by `per_day` for each UTC day
  since then not yet decayed (the persona's `decayed_through` day, written in the same transaction), its stage
  following its confidence down and COMPOST below `floor`: run twice in a day, the second writes nothing.
- `dream_state` counts the dreams and holds a lease, so one dream of a persona runs at a time across processes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from kgents.garden.lifecycle import GROWTH_ORDER, PROMOTION_THRESHOLDS
from kgents.garden.model import GardenEntry, Lifecycle

NEVER = date(1, 1, 1)
"""`decayed_through` of a persona never decayed."""


@dataclass(frozen=True, slots=True)
class Pending:
    """An entry changed since the last dream, and the version its pending row was written at (what `settle` takes)."""

    entry: GardenEntry
    version: int


@dataclass(frozen=True, slots=True)
class DreamState:
    persona: str
    dreams: int = 0
    dreamt_at: datetime | None = None
    decayed_through: date | None = None


@dataclass(frozen=True, slots=True)
class DecayRule:
    """Entries not nurtured for `stale_days` lose `per_day` a day; below `floor` they compost."""

    stale_days: int
    per_day: float
    floor: float

    def cut(self, today: date) -> date:
        """Entries last nurtured before this day are stale on `today` (a day past `stale_days`)."""
        return today - timedelta(days=self.stale_days)


@dataclass(frozen=True, slots=True)
class Decayed:
    """What a decay lowered: how many entries, and which of them went to COMPOST."""

    count: int = 0
    composted: tuple[uuid.UUID, ...] = ()
    ids: tuple[uuid.UUID, ...] = ()


class DreamLedger(Protocol):
    async def pending(self, persona: str, limit: int) -> list[Pending]:
        """Up to `limit` entries of `persona` changed since the last dream (COMPOST ones too), by id."""
        ...

    async def pending_count(self, persona: str) -> int: ...

    async def settle(self, persona: str, seen: Sequence[tuple[uuid.UUID, int]]) -> int:
        """Remove the pending rows of these (entry, version) pairs; a row written since at another version stays.
        Returns how many went."""
        ...

    async def state(self, persona: str) -> DreamState: ...

    async def decay(self, persona: str, today: date, rule: DecayRule, *, dry_run: bool = False) -> Decayed:
        """Decay what is due through `today` in one statement and record `today` as decayed through (nothing when
        `decayed_through` is already `today`); `dry_run`: what it would lower, writing nothing."""
        ...

    async def claim(self, persona: str, owner: str, seconds: float) -> bool:
        """Take the persona's dream lease for `seconds` (False while another owner holds it)."""
        ...

    async def finish(self, persona: str, owner: str, dreamt_at: datetime | None) -> None:
        """Release the lease; with `dreamt_at`, count a dream that ended then."""
        ...


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _stage_rank(column: str) -> str:
    whens = " ".join(f"WHEN '{s.value}' THEN {i}" for i, s in enumerate(GROWTH_ORDER))
    return f"CASE {column} {whens} END"


def _earned_rank(confidence: str) -> str:
    whens = " ".join(f"WHEN {confidence} >= {t} THEN {GROWTH_ORDER.index(s)}" for t, s in PROMOTION_THRESHOLDS)
    return f"CASE {whens} ELSE 0 END"


def decay_statements(
    persona: str, level: str, floor: str, cut: str, least: Callable[[str, str], str]
) -> tuple[str, str]:
    """(the decay, its preview) in one dialect: `level` the SQL of an entry's confidence after the decay, `floor`,
    `cut` and `persona` its parameters, `least` the dialect's two-argument minimum. The decay returns each
    lowered entry's id and stage; the preview each due entry's id and whether it would compost."""
    due = f"WHERE persona = {persona} AND lifecycle <> 'COMPOST' AND last_nurtured < {cut}"
    stage = decayed_stage(level, floor, least)
    update = f"UPDATE persona_garden SET confidence = {level}, lifecycle = {stage}, version = version + 1 {due}"  # noqa: S608
    preview = f"SELECT id, {level} < {floor} AS composts FROM persona_garden {due}"  # noqa: S608
    return f"{update} RETURNING id, lifecycle", preview


def decayed_stage(confidence: str, floor: str, least: Callable[[str, str], str]) -> str:
    """The stage after a decay to `confidence` (an SQL expression): COMPOST below `floor`, else the lower of the
    current stage and the one the confidence holds (`lifecycle.PROMOTION_THRESHOLDS`): it follows it down, never up."""
    rank = least(_stage_rank("lifecycle"), _earned_rank(confidence))
    names = " ".join(f"WHEN {i} THEN '{s.value}'" for i, s in enumerate(GROWTH_ORDER))
    return f"CASE WHEN {confidence} < {floor} THEN '{Lifecycle.COMPOST.value}' ELSE CASE {rank} {names} END END"

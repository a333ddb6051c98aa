"""What one statement does to the garden: plant it, nurture the entry it repeats, lower the one it contradicts, or
supersede the one it changes the mind about."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from kgents.garden.model import GardenEntry
from kgents.kgent.extract import NEGATIVE_TAG, Statement, contradicts, extract
from kgents.kgent.sameness import SAME_THRESHOLD, says_the_same
from kgents.memory.api import MemoryAPI, RecallHit

CONTRADICTION_STEP = 0.2
"""Confidence a contradicted entry loses."""
SUBJECT_OVERLAP = 0.5
"""Share of content words two statements must have in common to be about the same thing."""


class Action(StrEnum):
    PLANTED = "planted"
    NURTURED = "nurtured"
    CONTRADICTED = "contradicted"
    SUPERSEDED = "superseded"


@dataclass(frozen=True, slots=True)
class Learned:
    action: Action
    entry: GardenEntry
    """The entry planted, nurtured or lowered (for SUPERSEDED: the successor)."""
    previous: GardenEntry | None = None
    """For SUPERSEDED: the entry composted."""


def polarity_of(entry: GardenEntry) -> int:
    return -1 if NEGATIVE_TAG in entry.tags else 1


def subject_of(entry: GardenEntry) -> str:
    found = extract(entry.content)
    return entry.content if found is None else found.subject


def opposed(statement: Statement, hits: list[RecallHit]) -> RecallHit | None:
    """The best hit the statement says the opposite of, if any."""
    for hit in hits:
        if contradicts(statement, subject_of(hit.entry), polarity_of(hit.entry), SUBJECT_OVERLAP):
            return hit
    return None


def repeated(statement: Statement, hits: list[RecallHit], threshold: float = SAME_THRESHOLD) -> RecallHit | None:
    """The hit the statement says the same thing as (same polarity, `says_the_same` on a dense score), if any."""
    for hit in hits:
        if polarity_of(hit.entry) == statement.polarity and says_the_same(
            hit.entry.content, statement.content, hit.score, threshold
        ):
            return hit
    return None


async def plant(memory: MemoryAPI, statement: Statement, observed_at: datetime | None = None) -> GardenEntry:
    return await memory.remember(
        statement.content,
        type=statement.kind,
        tags=statement.tags,
        confidence=statement.confidence,
        evidence=[statement.content],
        affinities=dict(statement.affinities),
        observed_at=observed_at,
    )


async def learn(
    memory: MemoryAPI, statement: Statement, threshold: float = SAME_THRESHOLD, observed_at: datetime | None = None
) -> Learned:
    """Apply one statement to the garden."""
    hits = await memory.recall(statement.content, limit=5, mode="dense")
    against = opposed(statement, hits)
    if against is not None:
        old = against.entry
        if statement.change_of_mind:
            successor = await plant(memory, statement, observed_at)
            composted = await memory.compost(
                old.id, successor=successor.id, evidence=f"changed mind: {statement.content}"
            )
            return Learned(Action.SUPERSEDED, successor, composted)
        level = max(0.0, round(old.confidence - CONTRADICTION_STEP, 6))
        lowered = await memory.reassess(old.id, confidence=level, evidence=f"contradicted: {statement.content}")
        return Learned(Action.CONTRADICTED, lowered)
    same = repeated(statement, hits, threshold)
    if same is not None:
        return Learned(Action.NURTURED, await memory.nurture(same.entry.id, evidence=statement.content))
    return Learned(Action.PLANTED, await plant(memory, statement, observed_at))

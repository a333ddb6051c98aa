"""What a fact or an episode does to the garden (the preferences, values and habits go through `learn`).

A fact (type INSIGHT, tags `kgent` and `fact`, plus `subject:<who>` when it is about someone else) is compared
with the nearest facts already kept (dense recall, the same subject and speaker only): a repeat nurtures the entry
it repeats, a change of mind or of life (`change.relation`) plants the new fact and composts the old one with a
link to its successor (the old stays in history), anything else is planted beside them. An episode is planted
as said, tagged `episode`, at EPISODE_CONFIDENCE (a SEED the dream's decay lets go unless it is repeated).
"""

from __future__ import annotations

from datetime import datetime

from kgents.garden.filters import EntryFilter
from kgents.garden.model import EntryType, GardenEntry
from kgents.kgent.change import Relation, relation
from kgents.kgent.extract import LEARNED_TAG, tidy
from kgents.kgent.learn import Action, Learned
from kgents.kgent.understand import EPISODE_TAG, FACT_TAG, SUBJECT_PREFIX
from kgents.memory.api import MemoryAPI
from kgents.synapse.who import person_of

EPISODE_CONFIDENCE = 0.2
FACT_CONFIDENCE = 0.55
NEIGHBOURS = 5


def labelled(text: str, speaker: str | None) -> str:
    """The content of what `speaker` said: their words, with their name as a label when one is given."""
    words = tidy(text)
    return words if not speaker else f"{speaker}: {words}"


def fact_tags(subject: str | None) -> tuple[str, ...]:
    return (LEARNED_TAG, FACT_TAG) if subject is None else (LEARNED_TAG, FACT_TAG, f"{SUBJECT_PREFIX}{subject}")


async def plant_episode(
    memory: MemoryAPI, text: str, *, speaker: str | None = None, observed_at: datetime | None = None
) -> GardenEntry:
    return await memory.remember(
        labelled(text, speaker),
        type=EntryType.INSIGHT,
        tags=(LEARNED_TAG, EPISODE_TAG),
        confidence=EPISODE_CONFIDENCE,
        observed_at=observed_at,
    )


def subject_tag(entry: GardenEntry) -> str | None:
    """Whom a kept fact is about (its `subject:` tag), None for the user."""
    return next((t[len(SUBJECT_PREFIX) :] for t in entry.tags if t.startswith(SUBJECT_PREFIX)), None)


def _same_voice(entry: GardenEntry, content: str, subject: str | None) -> bool:
    """Both said by the same speaker (or both unlabelled) and about the same person."""
    return person_of(entry.content) == person_of(content) and subject_tag(entry) == subject


async def learn_fact(
    memory: MemoryAPI,
    text: str,
    subject: str | None,
    *,
    speaker: str | None = None,
    observed_at: datetime | None = None,
) -> Learned:
    """Plant, nurture or supersede with one fact."""
    content = labelled(text, speaker)
    hits = await memory.recall(
        content, limit=NEIGHBOURS, mode="dense", filters=EntryFilter(tags=(LEARNED_TAG, FACT_TAG))
    )
    for hit in hits:
        if not _same_voice(hit.entry, content, subject):
            continue
        said = relation(hit.entry.content, content, hit.score)
        if said is Relation.SAME:
            return Learned(Action.NURTURED, await memory.nurture(hit.entry.id, evidence=content))
        if said is Relation.SUPERSEDES:
            successor = await _plant(memory, content, subject, observed_at)
            old = await memory.compost(hit.entry.id, successor=successor.id, evidence=f"changed: {content}")
            return Learned(Action.SUPERSEDED, successor, old)
    return Learned(Action.PLANTED, await _plant(memory, content, subject, observed_at))


async def _plant(memory: MemoryAPI, content: str, subject: str | None, observed_at: datetime | None) -> GardenEntry:
    return await memory.remember(
        content,
        type=EntryType.INSIGHT,
        tags=fact_tags(subject),
        confidence=FACT_CONFIDENCE,
        evidence=[content],
        observed_at=observed_at,
    )

"""Who says the same thing as what changed: one index lookup per changed entry, then the candidates weighed against
each other, so a dream's cost follows what is new, never the size of the garden.

A group the dream may merge holds a changed entry and entries that each say the same thing as every other member,
so its members are a changed entry and that entry's neighbours. The index gives each changed entry's neighbours
(dense recall at the sameness threshold, every hit at that score: up to NEIGHBOURS); the candidates' own vectors
then give every pair among them (the same cosine the index scores), and `says_the_same` judges each pair.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from kgents.garden.model import GardenEntry, Lifecycle
from kgents.kgent.learn import polarity_of
from kgents.kgent.sameness import says_the_same
from kgents.memory.local import AsyncMemory
from kgents.synapse.apply import embed

NEIGHBOURS = 200
"""Recall's most hits per changed entry: every entry the index finds at the threshold (its pool is 100)."""

Progress = Callable[[int, int], None]
"""Told (entries looked at, entries to look at) as the dream goes."""


@dataclass
class Neighbourhood:
    """The candidates (changed entries and their neighbours) and, per candidate, the candidates it says the same
    thing as."""

    entries: dict[uuid.UUID, GardenEntry] = field(default_factory=dict)
    near: dict[uuid.UUID, set[uuid.UUID]] = field(default_factory=dict)


async def neighbourhood(
    memory: AsyncMemory, fresh: Sequence[GardenEntry], threshold: float, progress: Progress | None = None
) -> Neighbourhood:
    found = Neighbourhood({e.id: e for e in fresh})
    for done, entry in enumerate(fresh, 1):
        hits = await memory.recall(entry.content, limit=NEIGHBOURS, mode="dense", min_score=threshold)
        for hit in hits:  # as the truth holds it now: one the index still shows live may have composted
            if hit.entry.lifecycle is not Lifecycle.COMPOST:
                found.entries.setdefault(hit.entry.id, hit.entry)
        if progress is not None:
            progress(done, len(fresh))
    if len(found.entries) < 2:
        return found
    ranked = list(found.entries.values())
    stack = memory.stack
    vectors = await embed(stack.embedders(stack.state.active.embedder), [e.content for e in ranked])
    scores = np.asarray(vectors, dtype=np.float32) @ np.asarray(vectors, dtype=np.float32).T
    for i, j in zip(*np.nonzero(np.triu(scores >= threshold, k=1)), strict=True):
        a, b = ranked[int(i)], ranked[int(j)]
        if polarity_of(a) == polarity_of(b) and says_the_same(a.content, b.content, float(scores[i, j]), threshold):
            found.near.setdefault(a.id, set()).add(b.id)
            found.near.setdefault(b.id, set()).add(a.id)
    return found

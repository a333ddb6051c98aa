"""Dreaming a memory wherever it lives: in this process (`HypnagogicCycle`), or through the home's server, which
holds the index and dreams in its own process (`POST /v1/personas/{persona}/dream`, answered by `serve_dream`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kgents.errors import ValidationError
from kgents.hypnagogia.cycle import DreamResult, HypnagogicCycle
from kgents.hypnagogia.neighbours import Progress
from kgents.memory.api import MemoryAPI
from kgents.memory.local import AsyncMemory

MAX_ROUNDS = 1000
"""Most dreams `dream_until_done` runs in a row (each weighs up to `cycle.BUDGET` changed entries)."""


async def dream(
    memory: MemoryAPI, *, now: datetime | None = None, dry_run: bool = False, progress: Progress | None = None
) -> DreamResult:
    """One dream of `memory`'s persona: here when the memory is in this process, else by the server it goes
    through (`now` is for this process's own dreams only: a server dreams on its own clock)."""
    if isinstance(memory, AsyncMemory):
        return await HypnagogicCycle(memory).dream(now=now, dry_run=dry_run, progress=progress)
    from kgents.memory.remote import RemoteMemory

    if isinstance(memory, RemoteMemory):
        return DreamResult.from_dict(await memory.call("POST", "/dream", {"dry_run": dry_run}))
    raise ValidationError(f"cannot dream over a {type(memory).__name__}")


async def dream_until_done(
    memory: MemoryAPI,
    *,
    now: datetime | None = None,
    progress: Progress | None = None,
    rounds: Progress | None = None,
) -> DreamResult:
    """Dream until no changed entry is left (a backlog larger than one dream's budget takes several), the results
    added up; `rounds` is told (dreams done, changed entries left) after each."""
    total = await dream(memory, now=now, progress=progress)
    done = 1
    while total.remaining and not total.busy and done < MAX_ROUNDS:
        if rounds is not None:
            rounds(done, total.remaining)
        total = combine(total, await dream(memory, now=now, progress=progress))
        done += 1
    return total


def combine(a: DreamResult, b: DreamResult) -> DreamResult:
    shifts = dict(a.shifts)
    for axis, delta in b.shifts.items():
        shifts[axis] = round(shifts.get(axis, 0.0) + delta, 6)
    return DreamResult(
        learned=a.learned + b.learned,
        nurtured=a.nurtured + b.nurtured,
        promoted=a.promoted + b.promoted,
        superseded=a.superseded + b.superseded,
        composted=a.composted + b.composted,
        shifts=shifts,
        decayed=a.decayed + b.decayed,
        dry_run=a.dry_run,
        written=a.written + b.written,
        remaining=b.remaining,
        busy=b.busy,
    )


async def serve_dream(memory: MemoryAPI, options: Mapping[str, Any]) -> dict[str, Any]:
    """The server's side of `POST …/dream` (`{"dry_run": bool}`): one dream in the server's process."""
    unknown = set(options) - {"dry_run"}
    if unknown:
        raise ValidationError(f"the dream takes only dry_run (got {', '.join(sorted(unknown))})")
    dry_run = options.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise ValidationError("dry_run must be true or false")
    return (await dream(memory, dry_run=dry_run)).to_dict()

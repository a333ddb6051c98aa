"""`HypnagogicCycle.dream()`: consolidate what changed since the last dream, and forget what went stale.

1. Look at what changed: the entries the anchor's `dream_pending` names (planted or changed since the last dream, up
   to BUDGET of them a dream), each with its neighbours from the index (`neighbours.py`). Nothing else is read.
2. Cluster: 3 or more live entries (same polarity) that all say the same thing as each other (`says_the_same`:
   dense cosine at the measured threshold and the same specifics, so "client 1" and "client 2" never merge), one
   of them changed since the last dream → the strongest absorbs the others' evidence and is promoted (aggregated
   confidence, at least TREE) in one write; the others compost with a pointer to it. Entries a dream weighed and
   left apart are not weighed again until something new joins them.
3. Nudge the soul's eigenvectors toward the affinities of what changed, each axis by at most NUDGE_BOUND.
4. Decay, in one statement in the anchor (`DreamLedger.decay`): an entry not nurtured for STALE_DAYS loses
   DECAY_PER_DAY for each further UTC day not yet decayed; its stage follows its confidence down; below
   COMPOST_FLOOR it composts.
5. Settle: the pending rows of what it weighed and wrote are removed at the versions it saw, so a second dream
   finds nothing to do and writes nothing. The dream writes only the entries it merges, promotes or decays.

One dream of a persona runs at a time (a lease in `dream_state`); the bookkeeping never touches the user's tags
or versions.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kgents.clock import utcnow
from kgents.errors import ConflictError, LifecycleError, NotFoundError
from kgents.garden.dream_ledger import NEVER, Decayed, DreamLedger, Pending
from kgents.garden.model import GardenEntry, Lifecycle
from kgents.garden.service import SUPERSEDED_BY
from kgents.hypnagogia.neighbours import Progress, neighbourhood
from kgents.hypnagogia.rules import DECAY, aggregate, clusters, merged_evidence, shifts_for
from kgents.kgent.sameness import SAME_THRESHOLD
from kgents.memory.local import AsyncMemory

BUDGET = 1000
"""Most changed entries one dream weighs (the rest wait for the next dream: `remaining`)."""
LEASE_S = 300.0
"""How long a dream holds its persona's lease (a dream that dies leaves it to the next after this)."""
DECAY_INLINE = 1000
"""Up to this many decayed entries, the dream applies them to the index before it returns; more (a garden left alone
for a month decays whole) are left to the relay: the server's, `kgents synapse run`, or the next command that owns
the embedded index, as any write of another process is."""


@dataclass(frozen=True, slots=True)
class DreamResult:
    learned: int = 0
    """Live entries changed since the last dream, weighed by this one."""
    nurtured: int = 0
    promoted: tuple[str, ...] = ()
    superseded: int = 0
    composted: tuple[str, ...] = ()
    shifts: Mapping[str, float] = field(default_factory=dict)
    decayed: int = 0
    dry_run: bool = False
    written: int = 0
    """Entries this dream wrote (would write, in a dry run): merged, promoted, decayed."""
    remaining: int = 0
    """Changed entries left for the next dream (more than BUDGET were waiting)."""
    busy: bool = False
    """Another dream of this persona held the lease: this one did nothing."""

    @property
    def changed(self) -> bool:
        return bool(self.nurtured or self.promoted or self.composted or self.decayed or self.shifts or self.learned)

    def to_dict(self) -> dict[str, Any]:
        return {
            "learned": self.learned,
            "nurtured": self.nurtured,
            "promoted": list(self.promoted),
            "superseded": self.superseded,
            "composted": list(self.composted),
            "decayed": self.decayed,
            "eigenvector_shifts": dict(self.shifts),
            "dry_run": self.dry_run,
            "written": self.written,
            "remaining": self.remaining,
            "busy": self.busy,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DreamResult:
        return cls(
            learned=int(data["learned"]),
            nurtured=int(data["nurtured"]),
            promoted=tuple(str(i) for i in data["promoted"]),
            superseded=int(data["superseded"]),
            composted=tuple(str(i) for i in data["composted"]),
            shifts={str(k): float(v) for k, v in dict(data["eigenvector_shifts"]).items()},
            decayed=int(data["decayed"]),
            dry_run=bool(data["dry_run"]),
            written=int(data.get("written", 0)),
            remaining=int(data.get("remaining", 0)),
            busy=bool(data.get("busy", False)),
        )


class HypnagogicCycle:
    """The dream of one persona's memory, in the process that holds it (`hypnagogia.dream` goes through a server)."""

    def __init__(self, memory: AsyncMemory, *, threshold: float = SAME_THRESHOLD, budget: int = BUDGET) -> None:
        self.memory = memory
        self.threshold = threshold
        self.budget = budget
        self.ledger: DreamLedger = memory.garden.store.dream_ledger()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    async def dream(
        self, *, now: datetime | None = None, dry_run: bool = False, progress: Progress | None = None
    ) -> DreamResult:
        now = (now or utcnow()).astimezone(UTC)
        persona = self.memory.persona
        if dry_run:
            pending = await self._pending()
            decays = await self.ledger.decay(persona, now.date(), DECAY, dry_run=True)
            if not pending and not decays.count:
                return DreamResult(dry_run=True)
            return await self._weigh(pending, decays, progress, now, apply=False)
        decay_due = ((await self.ledger.state(persona)).decayed_through or NEVER) < now.date()
        if not decay_due and not await self.ledger.pending_count(persona):
            return DreamResult()  # nothing new, no day to decay: nothing read beyond this, nothing written
        if not await self.ledger.claim(persona, self.owner, LEASE_S):
            return DreamResult(busy=True)
        try:
            result = await self._weigh(await self._pending(), Decayed(), progress, now, apply=True)
        except BaseException:
            await self.ledger.finish(persona, self.owner, None)
            raise
        await self.ledger.finish(persona, self.owner, utcnow())
        return result

    async def _pending(self) -> list[Pending]:
        """What changed since the last dream, searchable: the changed entries' own outbox rows are applied to the
        index first (another process's `kgents garden plant` leaves them to the index's owner); the rest of the
        outbox (a large decay's, say) is the relay's, and the dream never waits for it."""
        pending = await self.ledger.pending(self.memory.persona, self.budget)
        if pending:
            await self.memory.indexer.settle([p.entry.id for p in pending])
        return pending

    async def _weigh(
        self, pending: list[Pending], decays: Decayed, progress: Progress | None, now: datetime, *, apply: bool
    ) -> DreamResult:
        m = self.memory
        learned = [p.entry for p in pending if p.entry.lifecycle is not Lifecycle.COMPOST]
        superseded = sum(1 for p in pending if p.entry.lifecycle is Lifecycle.COMPOST and _superseded(p.entry))
        near = await neighbourhood(m, learned, self.threshold, progress)
        groups = clusters(list(near.entries.values()), near.near, {e.id for e in learned})
        shifts = shifts_for(learned, (await m.soul()).eigenvectors) if learned else {}
        written: dict[uuid.UUID, int] = {}
        if apply:
            for group in groups:
                written.update(await self._promote(group))
            await self.ledger.settle(m.persona, [*((p.entry.id, p.version) for p in pending), *written.items()])
            if shifts:
                await m.nudge(shifts)
            decays = await self._decay(now)
            groups = [[e for e in g if e.id in written] for g in groups if g[0].id in written]
        merged = {e.id for g in groups for e in g}
        composted = [str(o.id) for g in groups for o in g[1:]]
        composted += [str(i) for i in decays.composted if i not in merged]
        return DreamResult(
            learned=len(learned),
            nurtured=sum(len(g) - 1 for g in groups),
            promoted=tuple(str(g[0].id) for g in groups),
            superseded=superseded,
            composted=tuple(composted),
            shifts=shifts,
            decayed=decays.count,
            dry_run=not apply,
            written=len(merged | set(decays.ids)),
            remaining=await self.ledger.pending_count(m.persona) - (0 if apply else len(pending)),
        )

    async def _promote(self, group: list[GardenEntry]) -> dict[uuid.UUID, int]:
        """The winner absorbs the others' evidence and is promoted (one write); the others compost into it. Returns
        the versions written. An entry another process composted or kept changing meanwhile is left as it is (the
        group, when it is the winner): the next dream weighs it again if it changed."""
        winner, others = group[0], group[1:]
        level = aggregate([e.confidence for e in group])
        try:
            promoted = await self.memory.garden.nurture(winner.id, evidence=merged_evidence(group), confidence=level)
        except (ConflictError, LifecycleError, NotFoundError):
            return {}
        await self.memory.indexer.settle([promoted.id])
        written = {promoted.id: promoted.version}
        for other in others:
            try:
                done = await self.memory.compost(other.id, successor=winner.id, evidence="merged while dreaming")
            except (ConflictError, LifecycleError, NotFoundError):
                continue
            written[done.id] = done.version
        return written

    async def _decay(self, now: datetime) -> Decayed:
        decays = await self.ledger.decay(self.memory.persona, now.date(), DECAY)
        if 0 < len(decays.ids) <= DECAY_INLINE:
            await self.memory.indexer.settle(list(decays.ids))  # the index's payloads (confidence, stage) follow
        return decays


def _superseded(entry: GardenEntry) -> bool:
    return any(t.startswith(SUPERSEDED_BY) for t in entry.tags)

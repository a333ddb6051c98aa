"""Reindex: re-embed every entry into a fresh collection with another embedder, then switch over atomically.

1. record the new collection as *pending* (from then on every relay writes both collections);
2. copy every entry in id order, embedded by the new embedder;
3. measure the new collection against the anchor and repair until it matches (events that landed meanwhile);
4. switch the active pointer in one compare-and-set (searches move over on their next query) and drop the
old one. Searches keep reading the old collection until step 4, so there is no moment without results.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kgents.clock import utcnow
from kgents.errors import ConflictError
from kgents.resonance.protocols import Embedder, VectorIndex
from kgents.synapse.apply import EmbedderResolver, apply_to_target
from kgents.synapse.coherency import CoherencyReport, measure, repair
from kgents.synapse.policy import is_alive
from kgents.synapse.queue import RelayQueue
from kgents.synapse.records import IndexState, Target
from kgents.synapse.state import collection_name

SCAN_BATCH = 512
MAX_CATCH_UP_ROUNDS = 10
DRAIN_LIMIT_S = 30.0


@dataclass(frozen=True, slots=True)
class ReindexReport:
    old: Target
    new: Target
    copied: int
    catch_up_rounds: int
    seconds: float
    coherency: CoherencyReport

    def to_dict(self) -> dict[str, Any]:
        return {
            "old": self.old.to_dict(),
            "new": self.new.to_dict(),
            "copied": self.copied,
            "catch_up_rounds": self.catch_up_rounds,
            "seconds": round(self.seconds, 3),
            "coherency": self.coherency.to_dict(),
        }


async def _start(queue: RelayQueue, index: VectorIndex, state: IndexState, target: Target) -> IndexState:
    if state.pending is not None:  # an earlier reindex died half-way: abandon its collection
        cleared = await queue.set_pending(state.generation, None)
        if cleared is None:
            raise ConflictError("another reindex changed the index state; try again")
        await index.drop_collection(state.pending.collection)
        state = cleared
    index_id = state.identity.id if state.identity else None
    await index.ensure_collection(target.collection, target.embedder, target.dimension, index_id)
    started = await queue.set_pending(state.generation, target)
    if started is None:
        await index.drop_collection(target.collection)
        raise ConflictError("another reindex changed the index state; try again")
    return started


async def wait_for_relays(queue: RelayQueue, generation: int, limit_s: float = DRAIN_LIMIT_S) -> bool:
    """Wait until every live relay has read state `generation` (none still writes the old collection);
    False if the deadline passed first (the old collection is dropped anyway: late writes fail and retry)."""
    deadline = time.monotonic() + limit_s
    while True:
        behind = [
            hb.relay_id
            for hb in await queue.heartbeats()
            if is_alive((utcnow() - hb.last_beat).total_seconds(), hb.interval_s)
            and int(hb.stats.get("generation") or 0) < generation
        ]
        if not behind:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)


async def copy_all(
    queue: RelayQueue,
    index: VectorIndex,
    embedder: Embedder,
    target: Target,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Embed every entry of the anchor into `target`, in id order; returns how many landed."""
    copied = 0
    after = None
    while page := await queue.scan(after, SCAN_BATCH):
        result = await apply_to_target(index, embedder, target, {e.id: e for e in page})
        copied += len(page) - len(result.failed)
        after = page[-1].id
        if progress is not None:
            progress(copied)
    return copied


async def catch_up(
    queue: RelayQueue, index: VectorIndex, embedders: EmbedderResolver, target: Target
) -> tuple[CoherencyReport, int]:
    """Measure `target` against the anchor and repair it until it matches (or enough rounds); the last report and
    the rounds it took."""
    rounds = 0
    report = await measure(queue, index, target)
    while not report.coherent and rounds < MAX_CATCH_UP_ROUNDS:
        rounds += 1
        await repair(queue, index, embedders, target, report)
        report = await measure(queue, index, target)
    return report, rounds


async def reindex(
    queue: RelayQueue,
    index: VectorIndex,
    embedder: Embedder,
    embedders: EmbedderResolver,
    state: IndexState,
    prefix: str,
    progress: Callable[[int], None] | None = None,
    on_state: Callable[[IndexState], None] | None = None,
) -> ReindexReport:
    """Rebuild the index with `embedder` and switch to it; `embedders` must resolve the new name to it too.
    `on_state` hears each new state as it is recorded (the pending collection, then the switch), so writers in
    this process that keep the state rather than read it (a server's faces) write where the relays do."""
    began = time.monotonic()
    target = Target(collection_name(prefix, embedder.name), embedder.name, embedder.dimension)
    old = state.active
    state = await _start(queue, index, state, target)
    if on_state is not None:
        on_state(state)
    copied = await copy_all(queue, index, embedder, target, progress)
    report, rounds = await catch_up(queue, index, embedders, target)
    switched = await queue.switch(state.generation)
    if switched is None:
        raise ConflictError("the index state changed during the reindex; the old collection stays active")
    if on_state is not None:
        on_state(switched)
    await wait_for_relays(queue, switched.generation)
    await index.drop_collection(old.collection)
    return ReindexReport(old, target, copied, rounds, time.monotonic() - began, report)

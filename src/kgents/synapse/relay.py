"""Synapse, the CDC relay: claims outbox rows, re-reads the rows they name, writes the index, then removes
them.

At-least-once and idempotent: an event is removed only after every target collection acknowledged; a crash
before that leaves it claimable (PostgreSQL rolls back; a SQLite lease expires). Stale events are harmless
because the relay applies the row's *current* state under the index's version guard. An index outage opens
the circuit breaker and counts against no entry; a failing entry retries with backoff and goes to the
dead-letter table after `max_attempts`, while the rest of its batch flows. Every index write is fenced by the
claim (`Claim.fence`): a relay that lost its claim mid-batch abandons the batch, counts none of it, and
requeues its entries if one of its writes may have gone out after the new owner's. `stop()` (SIGTERM) ends the
loop at a batch boundary.

Its heartbeat, the totals it adds to the anchor and the coherency it measures: `relay_beats.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from kgents.breaker import Breaker, BreakerState
from kgents.clock import utcnow
from kgents.resonance.protocols import Embedder, VectorIndex
from kgents.synapse.apply import (
    ApplyResult,
    EmbedderResolver,
    IndexOutageError,
    apply_to_target,
    describe,
)
from kgents.synapse.metrics import RelayStats
from kgents.synapse.policy import backoff_delay, should_dead_letter
from kgents.synapse.queue import Claim, ClaimLostError, RelayQueue
from kgents.synapse.records import ClaimedEvent, EntryState, IndexState, Target
from kgents.synapse.relay_beats import RelayBeats
from kgents.synapse.retention import Retention

log = logging.getLogger("kgents.synapse")


@dataclass(frozen=True, slots=True)
class RelayConfig:
    batch_size: int = 256
    lease_s: float = 30.0
    """SQLite: how long a claim is exclusive; a crashed relay's rows are claimable again after it."""
    poll_interval_s: float = 1.0
    """Fallback poll while notifications work (PostgreSQL LISTEN)."""
    idle_poll_s: float = 0.05
    """Poll when nothing notifies us (SQLite across processes)."""
    heartbeat_interval_s: float = 2.0
    max_attempts: int = 5
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 300.0
    breaker_threshold: int = 3
    breaker_reset_s: float = 2.0
    settle_behind: bool = False
    """Remove applied outbox rows without waiting for it (`Claim.complete(wait=False)`): a writer applying its
    own rows inline, whose caller waits for the index, not for the bookkeeping."""
    coherency_interval_s: float = 2.0
    """How often `run` measures coherency into its heartbeat (0: never), so `synapse status` never shows an old
    figure of an index only this relay can open; stretched to keep measuring under a tenth of the time."""


@dataclass(slots=True)
class BatchOutcome:
    claimed: int = 0
    completed: list[int] = field(default_factory=list)
    retried: int = 0
    dead: int = 0
    outage: bool = False
    lost: bool = False
    """The claim was lost mid-batch (another relay took it): nothing of the batch counted."""
    outage_cause: BaseException | None = None
    """What the index failed with, when `outage`."""
    settled: set[uuid.UUID] = field(default_factory=set)
    """Entries all of whose claimed rows completed."""


def new_relay_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Relay:
    """One relay worker over one anchor and one index; run many (processes or tasks) at once safely."""

    def __init__(
        self,
        queue: RelayQueue,
        index: VectorIndex,
        embedders: EmbedderResolver,
        config: RelayConfig | None = None,
        relay_id: str | None = None,
        retention: Retention | None = None,
    ) -> None:
        self.queue = queue
        self.index = index
        self.embedders = embedders
        self.config = config or RelayConfig()
        self.relay_id = relay_id or new_relay_id()
        self.breaker = Breaker(failure_threshold=self.config.breaker_threshold, cooldown_s=self.config.breaker_reset_s)
        self.stats = RelayStats()
        self.started_at = utcnow()
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        self.beats = RelayBeats(
            queue,
            index,
            self.stats,
            self.relay_id,
            self.started_at,
            heartbeat_interval_s=self.config.heartbeat_interval_s,
            coherency_interval_s=self.config.coherency_interval_s,
            retention=retention or Retention(),
        )
        self.on_batch: Callable[[BatchOutcome], None] | None = None
        """Test and bench hook: called after each committed batch."""

    # -- control ---------------------------------------------------------------------------------------------
    def wake(self) -> None:
        """Look at the outbox now (in-process writers call this after a commit)."""
        self._wake.set()

    def stop(self) -> None:
        """Finish the batch in flight, then leave `run` (safe from a signal handler)."""
        self._stopped.set()
        self._wake.set()

    # -- one batch -------------------------------------------------------------------------------------------
    async def run_once(self) -> BatchOutcome:
        """Claim one batch and settle every event in it; returns what happened."""
        return await self._run(lambda: self.queue.claim(self.relay_id, self.config.batch_size, self.config.lease_s))

    async def apply_entries(
        self,
        ids: Sequence[uuid.UUID],
        state: IndexState | None = None,
        written: Mapping[uuid.UUID, EntryState] | None = None,
        leased: Sequence[ClaimedEvent] = (),
    ) -> BatchOutcome:
        """Claim the outbox rows of these entries (due or not) and settle them: a writer's inline apply. `state`:
        the index state when the caller knows it (else it is read); `written`: entries the caller has just
        inserted, as inserted (no re-read, and no index lookup: their points are new); `leased`: their rows,
        leased to this relay as they were written."""
        claiming = lambda: self.queue.claim_entries(self.relay_id, ids, self.config.lease_s, leased)  # noqa: E731
        return await self._run(claiming, state, written)

    async def _run(
        self,
        claiming: Callable[[], AbstractAsyncContextManager[Claim]],
        state: IndexState | None = None,
        written: Mapping[uuid.UUID, EntryState] | None = None,
    ) -> BatchOutcome:
        if not self.breaker.allow(time.monotonic()):
            self.stats.circuit = self.breaker.state
            return BatchOutcome()
        trial = self.breaker.state is BreakerState.HALF_OPEN
        try:
            return await self._batch(claiming, state, written)
        finally:
            if trial:  # no verdict (the index was not reached: nothing due, claim lost, …): the next caller tries
                self.breaker.release()

    async def _batch(
        self,
        claiming: Callable[[], AbstractAsyncContextManager[Claim]],
        state: IndexState | None,
        written: Mapping[uuid.UUID, EntryState] | None,
    ) -> BatchOutcome:
        """One batch through an open door: claim, settle, account (the breaker records the index's verdict)."""
        outcome = BatchOutcome()
        state = state or await self.queue.read_state()
        if state is None:
            return outcome
        self.stats.generation = state.generation
        try:
            resolved = [(t, self.embedders(t.embedder)) for t in state.targets()]
        except Exception as exc:
            self.stats.last_error = f"embedder: {describe(exc)}"
            return outcome
        fence = _Fence()
        try:
            async with claiming() as claim:
                fence.claim = claim
                outcome.claimed = len(claim.events)
                if not claim.events:
                    return outcome
                try:
                    results = await self._settle(claim, fence, resolved, outcome, written)
                except IndexOutageError as exc:
                    self._outage(exc)
                    outcome.outage, outcome.outage_cause = True, exc.cause
                    return outcome  # nothing settled: PostgreSQL commits no change, SQLite releases the leases
        except ClaimLostError as exc:
            await self._lost(exc, fence)
            return BatchOutcome(claimed=outcome.claimed, lost=True)
        completed = set(outcome.completed)
        done = [e for e in claim.events if e.seq in completed]
        outcome.settled = {e.entry_id for e in done} - {e.entry_id for e in claim.events if e.seq not in completed}
        applied = len({e.entry_id for e in done})
        self._account(results, outcome, [e.created_at for e in done], applied)
        if self.on_batch is not None:
            self.on_batch(outcome)
        return outcome

    async def _settle(
        self,
        claim: Claim,
        fence: _Fence,
        resolved: list[tuple[Target, Embedder]],
        outcome: BatchOutcome,
        written: Mapping[uuid.UUID, EntryState] | None = None,
    ) -> list[ApplyResult]:
        """Apply the batch to every target (each write fenced), then settle every event with the claim: a
        failed entry retries or goes to the dead letters, the rest complete (recorded in `outcome`). Entries
        the caller has just `written` (and holds the claim on since) are applied as written, as new points."""
        by_entry: dict[uuid.UUID, list[ClaimedEvent]] = {}
        for event in claim.events:
            by_entry.setdefault(event.entry_id, []).append(event)
        fresh = written is not None and all(newest_written(written.get(i), by_entry[i]) for i in by_entry)
        current = written if written is not None and fresh else await claim.current(list(by_entry))
        rows: dict[uuid.UUID, EntryState | None] = {i: current.get(i) for i in by_entry}
        results = [
            await apply_to_target(self.index, emb, target, rows, fence, assume_new=fresh) for target, emb in resolved
        ]
        self.breaker.record_success()
        self.stats.circuit = self.breaker.state
        failed = _merge_failures(results)
        for entry_id, (step, error) in failed.items():
            group = by_entry[entry_id]
            attempts = max(e.attempts for e in group) + 1
            if should_dead_letter(attempts, self.config.max_attempts):
                await claim.dead_letter(group, step, error)
                outcome.dead += 1
                log.warning(
                    "synapse: entry %s dead-lettered after %d attempts at %s: %s", entry_id, attempts, step, error
                )
            else:
                delay = backoff_delay(attempts, base_s=self.config.backoff_base_s, cap_s=self.config.backoff_cap_s)
                await claim.retry([e.seq for e in group], f"{step}: {error}", utcnow() + timedelta(seconds=delay))
                outcome.retried += 1
        done = [e.seq for e in claim.events if e.entry_id not in failed]
        await claim.complete(done, wait=not self.config.settle_behind)
        outcome.completed = done
        return results

    async def _lost(self, exc: ClaimLostError, fence: _Fence) -> None:
        """Abandon the batch: count nothing. If an index write had begun, another relay may have applied these
        entries meanwhile and ours may have landed after theirs, so put them back in the queue."""
        log.warning("synapse: %s; batch abandoned", exc)
        if not fence.armed or fence.claim is None:
            return
        try:
            await self.queue.requeue(fence.claim.events)
        except Exception as err:
            log.warning(
                "synapse: could not requeue %d events after losing the claim (%s); run `kgents synapse reconcile`",
                len(fence.claim.events),
                describe(err),
            )

    def _outage(self, exc: IndexOutageError) -> None:
        self.breaker.record_failure(time.monotonic())
        self.stats.outages += 1
        self.stats.circuit = self.breaker.state
        self.stats.last_error = f"index: {exc}"
        log.warning("synapse: index unavailable (%s); circuit %s", exc, self.breaker.state.value)

    def _account(
        self, results: list[ApplyResult], outcome: BatchOutcome, created: list[datetime], applied: int
    ) -> None:
        self.stats.last_error = None  # a batch went through: whatever failed before has recovered
        self.stats.batches += 1
        self.stats.record_applied(created, utcnow())
        self.stats.applied_entries += applied
        self.stats.retried += outcome.retried
        self.stats.dead += outcome.dead
        for r in results:
            self.stats.embedded += r.embedded
            self.stats.payload_only += r.payload_only
            self.stats.deleted += r.deleted

    # -- loops -----------------------------------------------------------------------------------------------
    async def drain(self, timeout_s: float = 30.0) -> int:
        """Apply every due event now (in-process mode); stops when nothing is claimable, the index is down or
        the deadline passed. Returns how many events were completed."""
        deadline = time.monotonic() + timeout_s
        total = 0
        while time.monotonic() < deadline:
            outcome = await self.run_once()
            total += len(outcome.completed)
            if outcome.claimed == 0 or outcome.outage:
                break
        return total

    async def run(self) -> None:
        """Relay until `stop()`: wake on notifications, poll as a fallback, back off while the breaker is
        open."""
        beats = asyncio.create_task(self.beats.run(self._stopped))
        try:
            async with self.queue.listen(self._wake) as notified:
                poll = self.config.poll_interval_s if notified else self.config.idle_poll_s
                while not self._stopped.is_set():
                    try:
                        outcome = await self.run_once()
                    except Exception as exc:  # the anchor itself failed: keep going, never spin
                        self.stats.last_error = f"anchor: {describe(exc)}"
                        log.warning("synapse: batch failed: %s", describe(exc))
                        outcome = BatchOutcome(outage=True)
                    else:
                        self.stats.last_error = anchor_recovered(self.stats.last_error)
                    if outcome.claimed and not outcome.outage:
                        continue  # more may be due already
                    delay = max(poll, self.breaker.retry_in(time.monotonic())) if outcome.outage else poll
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), delay)
                    self._wake.clear()
        finally:
            self._stopped.set()
            beats.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await beats
            with contextlib.suppress(Exception):
                await self.queue.forget(self.relay_id)


def newest_written(written: EntryState | None, events: Sequence[ClaimedEvent]) -> bool:
    """Whether the state a writer just wrote is the newest the claim holds for its entry, so it may stand in for a
    re-read: every claimed row is of that version or older, and none deletes that version (an update or delete
    committed between the writer's insert and its claim makes a newer row, and the row must be read again)."""
    if written is None:
        return False
    return all(
        e.entry_version < written.version or (e.entry_version == written.version and e.operation != "DELETE")
        for e in events
    )


def anchor_recovered(last_error: str | None) -> str | None:
    """The error to keep once a batch reached the anchor again: an anchor error is over, others stay until a
    batch goes through."""
    return None if last_error is not None and last_error.startswith("anchor:") else last_error


class _Fence:
    """The claim check before each index write; `armed` once a write may have gone out."""

    def __init__(self) -> None:
        self.claim: Claim | None = None
        self.armed = False

    async def __call__(self) -> None:
        if self.claim is not None:
            await self.claim.fence()
        self.armed = True


def _merge_failures(results: list[ApplyResult]) -> dict[uuid.UUID, tuple[str, str]]:
    failed: dict[uuid.UUID, tuple[str, str]] = {}
    for r in results:
        for entry_id, why in r.failed.items():
            failed.setdefault(entry_id, why)
    return failed

"""A relay's reporting to the anchor: its heartbeat row (with the time its commit took), its new counts added to
the anchor's totals (what `synapse status` shows as processed), and coherency: one relay at a time measures (an
expiring lease in `synapse_coherency`), by bucket (`coherency_buckets`: what changed since its last measurement),
and publishes the figure there, so status, `/metrics` and `/v1/health` read it with its age instead of measuring.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from datetime import datetime
from typing import Any

from kgents.clock import utcnow
from kgents.resonance.protocols import VectorIndex
from kgents.synapse.apply import describe
from kgents.synapse.coherency_buckets import BucketedCoherency
from kgents.synapse.drift import RELAY_SAMPLE_S, append_sample, sample_from_coherency
from kgents.synapse.metrics import QUEUE_DEPTH_CAP, RelayStats
from kgents.synapse.queue import RelayQueue
from kgents.synapse.records import Heartbeat
from kgents.synapse.retention import PRUNE_INTERVAL_S, Pruned, Retention, cutoffs

log = logging.getLogger("kgents.synapse")

COUNT_CHECK_S = 30.0
"""How often the measuring relay checks the index's point count (linear in the index on the embedded one)."""
MEASURE_LEASE_S = 30.0
"""The least time the measuring relay holds its lease (renewed at each measurement; three pauses when longer)."""


class RelayBeats:
    """The heartbeat, totals and coherency measurements of one relay (its `stats`, shared with the relay)."""

    def __init__(
        self,
        queue: RelayQueue,
        index: VectorIndex,
        stats: RelayStats,
        relay_id: str,
        started_at: datetime,
        *,
        heartbeat_interval_s: float,
        coherency_interval_s: float,
        retention: Retention | None = None,
    ) -> None:
        self.queue = queue
        self.index = index
        self.stats = stats
        self.relay_id = relay_id
        self.started_at = started_at
        self.heartbeat_interval_s = heartbeat_interval_s
        self.coherency_interval_s = coherency_interval_s
        self._last_sample: float | None = None
        self._measurer = BucketedCoherency(queue, index, count_every_s=COUNT_CHECK_S)
        self._pause_s = coherency_interval_s
        self.retention = retention or Retention()
        self._last_prune: float | None = None
        self.pruned = Pruned()
        """What this relay's prunes removed so far."""

    async def beat(self) -> None:
        """Write this relay's heartbeat and add its new counts to the anchor's totals."""
        snapshot = self.stats.snapshot()
        began = time.perf_counter()
        await self.queue.beat(
            Heartbeat(
                self.relay_id,
                os.getpid(),
                socket.gethostname(),
                self.started_at,
                utcnow(),
                self.heartbeat_interval_s,
                snapshot,
            )
        )
        self.stats.beat_commit_ms = round((time.perf_counter() - began) * 1000.0, 3)
        await self.report(snapshot)

    async def report(self, snapshot: dict[str, Any] | None = None) -> None:
        """Add the counts not yet reported to the anchor's totals (what `synapse status` shows as processed)."""
        snapshot = snapshot or self.stats.snapshot()
        delta = self.stats.unreported()
        if any(delta):
            await self.queue.add_totals(*delta, snapshot["latency_p50_ms"], snapshot["latency_p95_ms"])
            self.stats.mark_reported(delta)

    async def measure_coherency(self) -> bool:
        """If this relay holds the measuring lease: measure what changed, keep the figure in the stats (and so in
        the next heartbeat) and publish it in the anchor. Returns whether it measured."""
        state = await self.queue.read_state()
        ledger = self.queue.buckets()
        if state is None or not await ledger.take_lease(self.relay_id, max(MEASURE_LEASE_S, 3 * self._pause_s)):
            self.stats.coherency = None  # another relay measures: its figure is in the anchor
            return False
        measured = await self._measurer.measure(state.active)
        figure = measured.to_dict()
        self.stats.coherency = figure
        await ledger.publish(figure, self.relay_id)
        await self._sample_drift(figure)
        await self._prune(state.active.collection)
        return True

    async def _prune(self, collection: str) -> None:
        """The anchor's housekeeping (`kgents.synapse.retention`), by the measuring relay, at most every
        PRUNE_INTERVAL_S; a failure is logged and never stops the relay."""
        now = time.monotonic()
        if self._last_prune is not None and now - self._last_prune < PRUNE_INTERVAL_S:
            return
        self._last_prune = now
        try:
            done = await self.queue.buckets().prune(cutoffs(self.retention, collection, utcnow()))
        except Exception as exc:
            log.warning("synapse: pruning the anchor failed: %s", describe(exc))
            return
        self.pruned = Pruned(
            self.pruned.tombstones + done.tombstones,
            self.pruned.dead_letters + done.dead_letters,
            self.pruned.audit + done.audit,
        )

    async def _sample_drift(self, report: dict[str, Any]) -> None:
        """Append the measurement to the anchor's drift history, at most every RELAY_SAMPLE_S (housekeeping: a
        failure is logged at debug level and never stops the relay)."""
        now = time.monotonic()
        if self._last_sample is not None and now - self._last_sample < RELAY_SAMPLE_S:
            return
        self._last_sample = now
        snapshot = self.stats.snapshot()
        try:
            depth = await self.queue.queue_depth(QUEUE_DEPTH_CAP)
            await append_sample(
                self.queue.anchor, sample_from_coherency(report, "relay", {**snapshot, "queue_depth": depth})
            )
        except Exception as exc:
            log.debug("synapse: could not append a drift sample: %s", describe(exc))

    async def run(self, stopped: asyncio.Event) -> None:
        """Beat every interval until `stopped` is set; coherency is measured once before the first beat (a live
        relay always has a figure), then beside the beats (a long measurement never delays one)."""
        measuring = None
        if self.coherency_interval_s > 0:
            took = await self._measure()
            measuring = asyncio.create_task(self._measure_loop(took, stopped))
        try:
            while not stopped.is_set():
                try:
                    await self.beat()
                except Exception as exc:  # the anchor may be briefly away; the relay loop will notice too
                    log.warning("synapse: heartbeat failed: %s", describe(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopped.wait(), self.heartbeat_interval_s)
        finally:
            if measuring is not None:
                measuring.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await measuring
                with contextlib.suppress(Exception):  # another relay measures at once, not when the lease runs out
                    await self.queue.buckets().release(self.relay_id)

    async def _measure(self) -> float:
        """Measure coherency into the stats; returns the seconds it took."""
        began = time.monotonic()
        try:
            await self.measure_coherency()
        except Exception as exc:
            log.warning("synapse: coherency measurement failed: %s", describe(exc))
        return time.monotonic() - began

    async def _measure_loop(self, took: float, stopped: asyncio.Event) -> None:
        while not stopped.is_set():
            with contextlib.suppress(TimeoutError):
                self._pause_s = measure_pause(self.coherency_interval_s, took)
                pause = self._pause_s - took
                await asyncio.wait_for(stopped.wait(), max(0.0, pause))
            if not stopped.is_set():
                took = await self._measure()


def measure_pause(interval_s: float, took_s: float) -> float:
    """Seconds from the start of one coherency measurement to the next: `interval_s`, or ten times what the
    last one took when that is longer (measuring never takes more than a tenth of the relay's time)."""
    return max(interval_s, 10.0 * took_s)

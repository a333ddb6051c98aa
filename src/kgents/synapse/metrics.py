"""What the relay reports about itself: lag as four numbers (queue depth, oldest pending age, commit→applied
latency, heartbeat age), counters, throughput and the breaker state.

`RelayStats` lives in the relay process and travels in its heartbeat row, and each heartbeat adds its new
counts to the anchor's totals (so a search's in-process drain, or a relay killed with -9, still counts);
`collect_metrics` joins them with what only the anchor knows (the queue), so any process (`kgents synapse
status`, the health model) sees the same view.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kgents.breaker import BreakerState
from kgents.clock import utcnow
from kgents.stats import percentile
from kgents.synapse.policy import is_alive
from kgents.synapse.queue import RelayQueue

log = logging.getLogger("kgents.synapse")

QUEUE_DEPTH_CAP = 100_000
HEARTBEAT_PURGE_S = 60.0
"""A heartbeat this long past its last beat is deleted; an expired but younger one is shown as not alive."""
LATENCY_WINDOW = 2_048
THROUGHPUT_WINDOW_S = 60.0


@dataclass(slots=True)
class RelayStats:
    """Counters and windows of one running relay."""

    processed: int = 0
    """Outbox events completed (applied or found already applied)."""
    applied_entries: int = 0
    embedded: int = 0
    payload_only: int = 0
    deleted: int = 0
    retried: int = 0
    dead: int = 0
    outages: int = 0
    batches: int = 0
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    completions: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=4_096))
    circuit: BreakerState = BreakerState.CLOSED
    last_error: str | None = None
    generation: int | None = None
    """The index-state generation this relay last read: a reindex drops the old collection only once every live
    relay has moved past the switch."""
    coherency: dict[str, Any] | None = None
    """The relay's latest coherency measurement, if it holds the measuring lease."""
    beat_commit_ms: float | None = None
    """How long this relay's last heartbeat took to commit (the anchor's commit time, measured by work it does
    anyway, so a health read never writes)."""
    mode: str = "relay"
    """`relay` (`kgents synapse run`) or `in-process` (a command's own drain on the embedded index)."""
    reported: tuple[int, int, int] = (0, 0, 0)
    """(processed, retried, dead) already added to the anchor's totals."""

    def unreported(self) -> tuple[int, int, int]:
        """(processed, retried, dead) not yet added to the anchor's totals."""
        done = (self.processed, self.retried, self.dead)
        return (done[0] - self.reported[0], done[1] - self.reported[1], done[2] - self.reported[2])

    def mark_reported(self, delta: tuple[int, int, int]) -> None:
        self.reported = (self.reported[0] + delta[0], self.reported[1] + delta[1], self.reported[2] + delta[2])

    def record_applied(self, created_at: list[datetime], now: datetime) -> None:
        for created in created_at:
            self.latencies_ms.append(max(0.0, (now - created).total_seconds() * 1000.0))
        self.processed += len(created_at)
        self.completions.append((time.monotonic(), len(created_at)))

    def throughput(self, now_mono: float | None = None) -> float:
        """Events per second over the last minute (0 with nothing done)."""
        now_mono = time.monotonic() if now_mono is None else now_mono
        recent = [(t, n) for t, n in self.completions if now_mono - t <= THROUGHPUT_WINDOW_S]
        if not recent:
            return 0.0
        span = max(now_mono - recent[0][0], 1.0)
        return sum(n for _, n in recent) / span

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready counters (what the heartbeat row carries)."""
        window = list(self.latencies_ms)
        return {
            "processed": self.processed,
            "applied_entries": self.applied_entries,
            "embedded": self.embedded,
            "payload_only": self.payload_only,
            "deleted": self.deleted,
            "retried": self.retried,
            "dead": self.dead,
            "outages": self.outages,
            "batches": self.batches,
            "latency_p50_ms": percentile(window, 0.5),
            "latency_p95_ms": percentile(window, 0.95),
            "latency_samples": len(window),
            "throughput_per_s": round(self.throughput(), 3),
            "circuit": self.circuit.value,
            "last_error": self.last_error,
            "generation": self.generation,
            "coherency": self.coherency,
            "beat_commit_ms": self.beat_commit_ms,
            "mode": self.mode,
        }


@dataclass(frozen=True, slots=True)
class RelayView:
    relay_id: str
    pid: int
    host: str
    heartbeat_age_s: float
    interval_s: float
    alive: bool
    stats: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SynapseMetrics:
    """The relay's health numbers for one anchor (every relay working on it)."""

    queue_depth: int
    queue_depth_capped: bool
    oldest_pending_age_s: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    processed: int
    """Events completed on this anchor by every relay and in-process drain (the anchor's totals)."""
    retried: int
    dead: int
    dead_letters: int
    throughput_per_s: float
    circuit_state: str
    last_heartbeat_age_s: float | None
    relays_alive: int
    relays: tuple[RelayView, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["relays"] = [asdict(r) for r in self.relays]
        return data


def _worst_circuit(states: list[str]) -> str:
    for state in (BreakerState.OPEN, BreakerState.HALF_OPEN):
        if state.value in states:
            return state.value
    return BreakerState.CLOSED.value


def purge_horizon(now: datetime) -> datetime:
    """Heartbeats last seen before this are deleted (their relays died long ago, e.g. killed with -9)."""
    return now - timedelta(seconds=HEARTBEAT_PURGE_S)


async def collect_metrics(queue: RelayQueue, local: RelayStats | None = None, *, purge: bool = True) -> SynapseMetrics:
    """Queue facts from the anchor, counters from its totals (every relay and in-process drain, ended ones too),
    relay facts from the live heartbeats (and `local`, the in-process relay). Long-expired heartbeats are
    purged on the way (unless `purge` is False: a health read never writes)."""
    now = utcnow()
    try:
        if purge:
            await queue.purge_heartbeats(purge_horizon(now))
    except Exception as exc:  # housekeeping only (a read-only anchor still has a status)
        log.debug("synapse: could not purge expired heartbeats: %s", type(exc).__name__)
    depth = await queue.queue_depth(QUEUE_DEPTH_CAP)
    oldest = await queue.oldest_pending()
    totals = await queue.totals()
    views: list[RelayView] = []
    for hb in await queue.heartbeats():
        age = max(0.0, (now - hb.last_beat).total_seconds())
        views.append(
            RelayView(hb.relay_id, hb.pid, hb.host, age, hb.interval_s, is_alive(age, hb.interval_s), hb.stats)
        )
    alive = [v for v in views if v.alive]
    stats = [v.stats for v in alive]
    unreported = (0, 0, 0)
    if local is not None:
        stats.append(local.snapshot())
        unreported = local.unreported()
    p50s = [s["latency_p50_ms"] for s in stats if s.get("latency_p50_ms") is not None]
    p95s = [s["latency_p95_ms"] for s in stats if s.get("latency_p95_ms") is not None]
    return SynapseMetrics(
        queue_depth=depth,
        queue_depth_capped=depth >= QUEUE_DEPTH_CAP,
        oldest_pending_age_s=None if oldest is None else max(0.0, (now - oldest).total_seconds()),
        latency_p50_ms=max(p50s) if p50s else totals.latency_p50_ms,
        latency_p95_ms=max(p95s) if p95s else totals.latency_p95_ms,
        processed=totals.processed + unreported[0],
        retried=totals.retried + unreported[1],
        dead=totals.dead + unreported[2],
        dead_letters=await queue.dead_letter_count(),
        throughput_per_s=sum(float(s.get("throughput_per_s", 0.0)) for s in stats),
        circuit_state=_worst_circuit([str(s.get("circuit", "CLOSED")) for s in stats]),
        last_heartbeat_age_s=min((v.heartbeat_age_s for v in views), default=None),
        relays_alive=len(alive),
        relays=tuple(views),
    )

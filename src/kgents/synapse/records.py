"""Values the queue hands around: claimed events, dead letters, heartbeats, the index state."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class ClaimedEvent:
    """One outbox row a relay holds: the key and source version only (the row itself is re-read)."""

    seq: int
    entry_id: uuid.UUID
    persona: str
    operation: str
    entry_version: int
    created_at: datetime
    attempts: int


ENTRY_STATE_COLUMNS = (
    "id, persona, content, entry_type, lifecycle, confidence, tags, version, coalesce(observed_at, planted_at)"
)


@dataclass(frozen=True, slots=True)
class EntryState:
    """The fields of a garden row that the index mirrors, read without re-validation (the database's constraints
    already hold them): the relay reads thousands per second and needs nothing else."""

    id: uuid.UUID
    persona: str
    content: str
    entry_type: str
    lifecycle: str
    confidence: float
    tags: tuple[str, ...]
    version: int
    observed_at: float | None = None
    """When the entry was observed, in seconds since the epoch (the index filters on it)."""

    @classmethod
    def of(cls, entry: Any) -> EntryState:
        """From a `GardenEntry`."""
        return cls(
            entry.id,
            entry.persona,
            entry.content,
            str(entry.entry_type),
            str(entry.lifecycle),
            float(entry.confidence),
            tuple(entry.tags),
            int(entry.version),
            entry.observed.timestamp(),
        )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    outbox_seq: int
    entry_id: uuid.UUID
    persona: str
    operation: str
    entry_version: int
    step: str
    error: str
    attempts: int
    failed_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "outbox_seq": self.outbox_seq,
            "entry_id": str(self.entry_id),
            "persona": self.persona,
            "operation": self.operation,
            "entry_version": self.entry_version,
            "step": self.step,
            "error": self.error,
            "attempts": self.attempts,
            "failed_at": self.failed_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A relay's expiring proof of life, with its latest counters so another process can show them."""

    relay_id: str
    pid: int
    host: str
    started_at: datetime
    last_beat: datetime
    interval_s: float
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Target:
    """One collection a relay keeps current, with the embedder that fills it."""

    collection: str
    embedder: str
    dimension: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class IndexIdentity:
    """Which vector index an anchor feeds: a random id stamped into the index's collection metadata, and where
    that index is (backend and location, safe to print)."""

    id: str
    location: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class IndexState:
    """Which collection searches read (active) and, during a reindex, which one is being built (pending), in
    which index (None only on an anchor from before index identities, until an index claims it)."""

    active: Target
    pending: Target | None
    generation: int
    identity: IndexIdentity | None = None

    def targets(self) -> tuple[Target, ...]:
        """Every collection a relay writes: the active one and, while a reindex runs, the pending one too."""
        return (self.active,) if self.pending is None else (self.active, self.pending)

    def to_dict(self) -> dict[str, Any]:
        return {
            "active": self.active.to_dict(),
            "pending": None if self.pending is None else self.pending.to_dict(),
            "generation": self.generation,
            "index": None if self.identity is None else self.identity.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class Totals:
    """Work done on this anchor by every relay and in-process drain (added at each heartbeat)."""

    processed: int = 0
    retried: int = 0
    dead: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    updated_at: datetime | None = None

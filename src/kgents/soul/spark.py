"""The contract of the Spark: the fast, expiring copy of soul state and the pub/sub between K-gent processes.

Two adapters keep it: `RedisSpark` (shared by every process that points at the same Redis) and `EmbeddedSpark`
(one process, no server). Neither is ever the only copy: `SoulService` writes the anchor snapshot first.
Cache writes are guarded by the state's revision: a slow writer never puts an older state over a newer one; a
cached state is served only at the snapshot's revision (`SoulService` checks), so a lost cache write costs speed.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from kgents.errors import BackendUnavailableError
from kgents.soul.model import DialogueMode, parse_mode

HEARTBEAT_INTERVAL_S = 5.0
HEARTBEAT_TTL_S = 15.0
"""A heartbeat older than this (interval + margin) means the instance is gone."""


def new_instance_id() -> str:
    """Who is speaking on the channel: unique per Spark object, so a process can ignore its own messages."""
    return f"{os.getpid()}-{uuid.uuid4().hex[:12]}"


def soul_key(prefix: str, persona: str, soul_id: str) -> str:
    return f"kgents:{prefix}:soul:{persona}:{soul_id}"


def persona_pattern(prefix: str, persona: str) -> str:
    """A Redis SCAN pattern for every soul key of one persona (a persona name holds no glob character)."""
    return f"kgents:{prefix}:soul:{persona}:*"


def mode_channel(prefix: str, persona: str, soul_id: str) -> str:
    return f"kgents:{prefix}:soul:{persona}:{soul_id}:mode"


def instances_key(prefix: str) -> str:
    """A sorted set: instance id → when its heartbeat expires (server clock, ms)."""
    return f"kgents:{prefix}:spark:instances"


@dataclass(frozen=True, slots=True)
class ModeChange:
    """One instance told the others that a soul's dialogue mode changed."""

    persona: str
    soul_id: str
    mode: DialogueMode
    previous: DialogueMode | None
    revision: int
    instance_id: str
    sent_ns: int
    """Wall clock (time.time_ns) at publication, for propagation latency on one machine."""

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": 1,
                "persona": self.persona,
                "soul_id": self.soul_id,
                "mode": self.mode.value,
                "previous": None if self.previous is None else self.previous.value,
                "revision": self.revision,
                "instance": self.instance_id,
                "sent_ns": self.sent_ns,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> ModeChange | None:
        """The change, or None for anything that is not a well-formed message of ours (never raises)."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("v") != 1:
                return None
            previous = data["previous"]
            revision, sent = data["revision"], data["sent_ns"]
            if not (isinstance(revision, int) and isinstance(sent, int)):
                return None
            return cls(
                persona=str(data["persona"]),
                soul_id=str(data["soul_id"]),
                mode=parse_mode(data["mode"]),
                previous=None if previous is None else parse_mode(previous),
                revision=revision,
                instance_id=str(data["instance"]),
                sent_ns=sent,
            )
        except (ValueError, KeyError, TypeError):
            return None

    def to_dict(self) -> dict[str, Any]:
        return json.loads(self.to_json())  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class SparkStats:
    """What the Spark's engine says about itself (None where it cannot know)."""

    backend: str
    used_memory_bytes: int | None
    max_memory_bytes: int | None
    """None or 0: no limit configured."""
    ops_per_second: float | None
    connected_clients: int | None
    connected_instances: int
    """K-gent processes with a live heartbeat on this Spark (this one included)."""
    reachable: bool = True
    errors: int = 0
    """Calls to the engine that failed since this Spark was opened (not the ones skipped while it was paused)."""
    keyspace_hits: int | None = None
    keyspace_misses: int | None = None
    """The engine's own lookup counters (Redis INFO), for the triad's hit rate; None where unknown."""


class SparkPaused(BackendUnavailableError):
    """The Spark failed a moment ago and is left alone until its pause is over: no call reaches the server."""


@runtime_checkable
class SparkStore(Protocol):
    """The fast copy of soul state (with TTL) and the mode-change channel between instances."""

    @property
    def backend(self) -> str:
        """`redis` or `embedded`."""
        ...

    @property
    def instance_id(self) -> str: ...

    @property
    def supports_pubsub(self) -> bool:
        """True when changes reach other processes (Redis); the embedded Spark is one process only."""
        ...

    @property
    def shared(self) -> bool:
        """True when the cache outlives this process (Redis): a miss there means it expired or was lost."""
        ...

    async def get(self, persona: str, soul_id: str) -> str | None:
        """The cached state JSON, or None when absent or expired."""
        ...

    async def put(self, persona: str, soul_id: str, state_json: str, revision: int, ttl_s: float) -> bool:
        """Cache the state for `ttl_s` unless a newer revision is cached; True if written."""
        ...

    async def put_raw(self, persona: str, soul_id: str, data: str, ttl_s: float) -> None:
        """Store bytes as they are, unguarded (tests and repair tools only)."""
        ...

    async def delete(self, persona: str, soul_id: str) -> bool: ...

    async def forget_persona(self, persona: str) -> int:
        """Drop every cached soul of `persona` (`kgents forget`); returns how many keys went."""
        ...

    async def ttl(self, persona: str, soul_id: str) -> float | None:
        """Seconds the cached state has left, None when not cached."""
        ...

    async def publish(self, change: ModeChange) -> int:
        """Tell other instances; returns how many listeners received it (0 on the embedded Spark).

        BackendUnavailableError when the server cannot take it now: Redis then keeps the soul's latest change and
        sends it as soon as the server answers again (a watcher never stays on a stale mode).
        """
        ...

    def subscribe(self, persona: str, soul_id: str) -> AsyncIterator[ModeChange | None]:
        """Mode changes of this soul made by OTHER instances, until the iterator is closed.

        Reconnects with backoff when the server goes away and then yields None once: "changes may have been
        missed" (pub/sub drops messages for a disconnected client; `SoulService.watch` re-reads the snapshot).
        The embedded Spark raises ConfigError.
        """
        ...

    async def stats(self) -> SparkStats: ...

    async def close(self) -> None: ...


class Backoff:
    """Exponential backoff with full jitter, capped, for reconnect loops."""

    def __init__(self, base_s: float = 0.05, cap_s: float = 2.0) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self.attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap_s, self.base_s * (2**self.attempt))
        self.attempt += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0

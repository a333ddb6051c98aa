"""The embedded Spark: an in-process cache with the same TTL and revision-guard semantics as Redis.

It serves the embedded default (no servers): fast reads within one process, with the anchor snapshot beneath.
Pub/sub across processes is what Redis is for, so `subscribe` says so plainly instead of pretending.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from kgents.errors import ConfigError
from kgents.soul.spark import ModeChange, SparkStats, new_instance_id

PUBSUB_NEEDS_REDIS = (
    "watching mode changes of other K-gent processes needs Redis: set KGENTS_REDIS_URL"
    " (the embedded spark lives inside one process)"
)


class EmbeddedSpark:
    """Soul states in a dict, each with a deadline on the monotonic clock."""

    backend = "embedded"
    supports_pubsub = False
    shared = False

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], tuple[str, int, float]] = {}
        self._instance_id = new_instance_id()
        self._ops = 0
        self._started = time.monotonic()

    @property
    def instance_id(self) -> str:
        return self._instance_id

    def _live(self, persona: str, soul_id: str) -> tuple[str, int, float] | None:
        key = (persona, soul_id)
        entry = self._entries.get(key)
        if entry is not None and entry[2] <= time.monotonic():
            del self._entries[key]
            return None
        return entry

    async def get(self, persona: str, soul_id: str) -> str | None:
        self._ops += 1
        entry = self._live(persona, soul_id)
        return None if entry is None else entry[0]

    async def put(self, persona: str, soul_id: str, state_json: str, revision: int, ttl_s: float) -> bool:
        self._ops += 1
        entry = self._live(persona, soul_id)
        if entry is not None and entry[1] > revision:
            return False
        self._entries[(persona, soul_id)] = (state_json, revision, time.monotonic() + ttl_s)
        return True

    async def put_raw(self, persona: str, soul_id: str, data: str, ttl_s: float) -> None:
        self._entries[(persona, soul_id)] = (data, -1, time.monotonic() + ttl_s)

    async def delete(self, persona: str, soul_id: str) -> bool:
        self._ops += 1
        return self._entries.pop((persona, soul_id), None) is not None

    async def forget_persona(self, persona: str) -> int:
        keys = [key for key in self._entries if key[0] == persona]
        for key in keys:
            del self._entries[key]
        return len(keys)

    async def ttl(self, persona: str, soul_id: str) -> float | None:
        entry = self._live(persona, soul_id)
        return None if entry is None else max(0.0, entry[2] - time.monotonic())

    async def publish(self, change: ModeChange) -> int:
        """No other process can hear an in-process spark; the change is already in the snapshot."""
        return 0

    async def subscribe(self, persona: str, soul_id: str) -> AsyncIterator[ModeChange | None]:
        raise ConfigError(PUBSUB_NEEDS_REDIS)
        yield  # pragma: no cover - makes this an async generator

    async def stats(self) -> SparkStats:
        now = time.monotonic()
        for key in [k for k, v in self._entries.items() if v[2] <= now]:
            del self._entries[key]
        elapsed = max(now - self._started, 1e-9)
        return SparkStats(
            backend=self.backend,
            used_memory_bytes=sum(len(v[0]) for v in self._entries.values()),
            max_memory_bytes=None,
            ops_per_second=self._ops / elapsed,
            connected_clients=None,
            connected_instances=1,
        )

    async def close(self) -> None:
        self._entries.clear()

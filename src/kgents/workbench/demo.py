"""A seeded, deterministic data set for the workbench: fixed health (healthy or degraded), a garden of entries with
clustered vectors, a drift history with a dip, one soul. Snapshot tests and the README's screenshots use it
(`kgents workbench --demo` shows it); pilot tests use the real collector."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from kgents.garden.filters import EntryFilter
from kgents.garden.model import EntryType, GardenEntry, Lifecycle
from kgents.garden.records import AuditRecord, Operation
from kgents.health.model import Level, PartHealth, TriadHealth
from kgents.memory.api import SoulView
from kgents.synapse.drift import DriftSample

AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PERSONA = "kent"
TOPICS: tuple[tuple[str, EntryType, tuple[str, ...]], ...] = (
    (
        "code",
        EntryType.PREFERENCE,
        (
            "prefers small pure functions",
            "keeps modules under 400 lines",
            "types everything strictly",
            "deletes dead code at once",
            "tests before fixes",
        ),
    ),
    (
        "tools",
        EntryType.PATTERN,
        (
            "reaches for ripgrep first",
            "keeps htop open beside the editor",
            "uses tmux for long jobs",
            "reads the changelog before upgrading",
        ),
    ),
    (
        "values",
        EntryType.VALUE,
        (
            "truth lives in the anchor",
            "no mocks of our own stores",
            "a clear error beats a silent loss",
            "measure before optimising",
        ),
    ),
    (
        "life",
        EntryType.BEHAVIOR,
        (
            "walks after lunch",
            "writes notes in the morning",
            "drinks tea, not coffee",
            "reviews pull requests before noon",
        ),
    ),
)
STAGES = (Lifecycle.SEED, Lifecycle.SAPLING, Lifecycle.TREE, Lifecycle.FLOWER, Lifecycle.COMPOST)


def seeded_entries() -> list[GardenEntry]:
    entries = []
    n = 0
    for _topic, kind, contents in TOPICS:
        for content in contents:
            entries.append(
                GardenEntry(
                    PERSONA,
                    content,
                    kind,
                    STAGES[n % len(STAGES)],
                    round(0.35 + 0.04 * n, 2),
                    uuid.uuid5(uuid.NAMESPACE_URL, f"kgents-demo:{content}"),
                    AT - timedelta(days=30 - n),
                    tags=(_topic,),
                    version=1 + n % 3,
                )
            )
            n += 1
    return entries


def seeded_vectors(entries: Sequence[GardenEntry], dimension: int = 32) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Vectors clustered by tag (the topic), fixed by a seed."""
    rng = np.random.default_rng(7)
    centres = {topic: rng.normal(0, 1, dimension) for topic, _kind, _c in TOPICS}
    rows = [centres[e.tags[0]] + rng.normal(0, 0.35, dimension) for e in entries]
    return np.asarray(rows, dtype=np.float32)


def _part(name: str, level: Level, reason: str, backend: str, **figures: Any) -> PartHealth:
    return PartHealth(name, level, reason, backend, figures, None, 1.5)


def healthy() -> TriadHealth:
    return TriadHealth(
        (
            _part(
                "durability",
                Level.THRIVING,
                "anchor reachable, commit 1.3 ms",
                "SQLite",
                connect_ms=0.4,
                commit_ms=1.3,
                read_only=False,
                pending_events=0,
                database_bytes=1_482_752,
            ),
            _part(
                "resonance",
                Level.THRIVING,
                "Qdrant Edge coherent with the anchor (100 %), search 2.1 ms",
                "Qdrant Edge",
                coherency_with_truth=1.0,
                matched=17,
                stale=0,
                missing=0,
                orphaned=0,
                total=17,
                search_ms=2.1,
                entries_indexed=17,
                collection="kgents_static256_v1",
                embedder="static256",
            ),
            _part(
                "reflex",
                Level.HEALTHY,
                "Redis not configured: the in-process Spark serves each process (not a fault)",
                "embedded",
                hit_rate=None,
                lookups=3,
            ),
            _part(
                "synapse",
                Level.THRIVING,
                "Synapse keeping up: 0 pending, lag p95 12 ms, circuit CLOSED",
                "in-process",
                events_processed=42,
                pending_events=0,
                oldest_pending_s=0.0,
                lag_p50_ms=6.0,
                lag_p95_ms=12.0,
                dead_letters=0,
                circuit="CLOSED",
                throughput_per_s=3.5,
            ),
        ),
        AT,
        12.0,
    )


def degraded() -> TriadHealth:
    base = healthy()
    return TriadHealth(
        (
            base.parts[0],
            _part(
                "resonance",
                Level.DEGRADED,
                "Qdrant Edge drifting from the anchor (41 %): 10 stale or missing",
                "Qdrant Edge",
                coherency_with_truth=0.41,
                matched=7,
                stale=4,
                missing=6,
                orphaned=0,
                total=17,
                search_ms=3.4,
                entries_indexed=11,
                collection="kgents_static256_v1",
                embedder="static256",
            ),
            PartHealth(
                "reflex",
                Level.CRITICAL,
                "Redis unreachable: Connection refused",
                "Redis",
                {},
                "Error 111 connecting to 127.0.0.1:6390. Connection refused.",
                2.0,
            ),
            _part(
                "synapse",
                Level.DEGRADED,
                "Synapse behind: 10 pending, oldest 140 s, circuit HALF_OPEN",
                "relay",
                events_processed=42,
                pending_events=10,
                oldest_pending_s=140.0,
                lag_p50_ms=900.0,
                lag_p95_ms=4_200.0,
                dead_letters=1,
                circuit="HALF_OPEN",
                throughput_per_s=0.2,
            ),
        ),
        AT,
        40.0,
    )


def seeded_drift(count: int = 40) -> list[DriftSample]:
    samples = []
    for i in range(count):
        dip = 12 <= i < 20
        coherency = 1.0 if not dip else round(1.0 - 0.07 * (i - 11), 2)
        samples.append(
            DriftSample(
                AT - timedelta(seconds=30 * (count - i)),
                "relay" if i % 3 else "status",
                coherency,
                17 if not dip else 17 - (i - 11),
                0 if not dip else (i - 11) // 2,
                0 if not dip else (i - 11 + 1) // 2,
                0,
                0 if not dip else i - 11,
                0.0,
                5.0 + (i % 5),
                12.0 + (300.0 * (i - 11) if dip else (i % 7)),
            )
        )
    return samples


def seeded_soul() -> SoulView:
    return SoulView(
        "kgent",
        "REFLECT",
        {"aesthetic": (0.62, 0.8), "categorical": (-0.25, 0.6), "gratitude": (0.8, 0.9), "heterarchy": (0.1, 0.4)},
        17,
        128,
        "snapshot",
    )


class FixedSource:
    """A WorkbenchSource of fixed data; `healths` are returned in turn (the last one repeats)."""

    def __init__(self, healths: Sequence[TriadHealth] | None = None) -> None:
        self.healths = list(healths or [healthy()])
        self._served = 0
        self._entries = seeded_entries()

    async def health(self) -> TriadHealth:
        found = self.healths[min(self._served, len(self.healths) - 1)]
        self._served += 1
        return found

    async def drift(self, limit: int) -> list[DriftSample]:
        return seeded_drift()[-limit:]

    async def souls(self) -> list[SoulView]:
        return [seeded_soul()]

    async def entries(self, filters: EntryFilter | None) -> list[GardenEntry]:
        chosen = filters or EntryFilter()
        return [e for e in self._entries if chosen.accepts(e)]

    async def history(self, entry_id: str) -> list[AuditRecord]:
        entry = next(e for e in self._entries if str(e.id) == entry_id)
        records = [AuditRecord(1, entry.id, Operation.INSERT, 1, entry.planted_at, None, {"confidence": 0.3})]
        for v in range(2, entry.version + 1):
            when = entry.planted_at + timedelta(days=v)
            records.append(
                AuditRecord(
                    v,
                    entry.id,
                    Operation.UPDATE,
                    v,
                    when,
                    {"confidence": 0.3},
                    {"confidence": entry.confidence, "lifecycle": entry.lifecycle.value},
                )
            )
        return records

    async def recall(self, query: str, limit: int) -> list[str]:
        words = set(query.lower().split())
        scored = [(len(words & set(e.content.lower().split())), str(e.id)) for e in self._entries]
        return [i for score, i in sorted(scored, key=lambda s: -s[0]) if score][:limit]

    async def vectors(self, entries: Sequence[GardenEntry]) -> np.ndarray[Any, np.dtype[np.float32]]:
        every = seeded_vectors(self._entries)
        index = {e.id: i for i, e in enumerate(self._entries)}
        return np.asarray([every[index[e.id]] for e in entries], dtype=np.float32)

    async def close(self) -> None:
        return None

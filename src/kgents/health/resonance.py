"""The resonance probe: coherency with the truth (matched / stale / missing / orphaned), a timed search, entries
indexed and the index's build state.

On the embedded default (SQLite + Qdrant Edge) `collect_health` drains pending events before the probes run, as
every command there does. When another process owns the embedded index (a running relay), the figure
that relay measured, or the newest sample of the drift history, stands in, with its age.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kgents.clock import utcnow
from kgents.config import Settings
from kgents.health.levels import Thresholds, resonance_verdict
from kgents.health.model import Level, PartHealth
from kgents.synapse.drift import append_sample, read_history, sample_from_coherency
from kgents.synapse.queue import queue_on

if TYPE_CHECKING:
    from kgents.synapse.runtime import Stack

STAND_IN_MAX_AGE_S = 120.0
"""A relay's or the history's coherency older than this is not used in place of a measurement."""
PROBE_QUERY = "health probe"


def index_name(settings: Settings) -> str:
    return "Qdrant" if settings.qdrant_url else "Qdrant Edge"


async def probe_resonance(settings: Settings, t: Thresholds, *, record: str | None = None) -> PartHealth:
    from kgents.errors import IndexLockedError
    from kgents.synapse.runtime import open_stack

    try:
        stack = await open_stack(settings)
    except IndexLockedError as exc:
        return await _stand_in(settings, t, str(exc))
    try:
        return await measure_resonance(stack, settings, t, record=record)
    finally:
        await stack.close()


async def measure_resonance(
    stack: Stack, settings: Settings, t: Thresholds, *, record: str | None = None, full: bool = False
) -> PartHealth:
    """The resonance part measured over an opened stack: coherency by bucket (`full`: every (id, version))."""
    from kgents.garden.filters import EntryFilter

    name = index_name(settings)
    data = await stack.coherency_figure(full=full)
    state = stack.state
    embedder = stack.embedders(state.active.embedder)
    vector = embedder.embed([PROBE_QUERY])[0]
    began = time.perf_counter()
    await stack.index.search(state.active.collection, vector, settings.persona, EntryFilter(), limit=1)
    search_ms = (time.perf_counter() - began) * 1000.0
    points = int(data["index_points"])  # counted by the measurement above
    if record:
        await append_sample(stack.store.anchor, sample_from_coherency(data, record, (await stack.metrics()).to_dict()))
    counts = {k: int(data[k]) for k in ("matched", "stale", "missing", "orphaned")}
    coherency = float(data["coherency_with_truth"])
    verdict = resonance_verdict(coherency, search_ms, name, counts, t)
    figures: dict[str, Any] = {
        "coherency_with_truth": coherency,
        **counts,
        "total": int(data["total"]),
        "search_ms": round(search_ms, 3),
        "entries_indexed": points,
        "collection": state.active.collection,
        "embedder": state.active.embedder,
        "index_state": "ready" if state.pending is None else f"reindexing into {state.pending.collection}",
        "measured_by": "this probe",
        "age_s": 0.0,
    }
    return PartHealth("resonance", verdict.level, verdict.reason, name, figures)


async def _stand_in(settings: Settings, t: Thresholds, locked: str) -> PartHealth:
    """The embedded index is another process's: use the figure its measuring relay published, else the newest
    history sample."""
    from kgents.garden.store import open_store

    name = index_name(settings)
    now = utcnow()
    store = await open_store(settings)
    try:
        stored = await queue_on(store.anchor).buckets().figure()
        report: dict[str, Any] | None = None if stored is None else stored.figures
        source = "the relay that owns the index"
        if report is None:
            history = await read_history(store.anchor, 1)
            if history and history[-1].coherency is not None:
                s = history[-1]
                report = {**s.to_dict(), "coherency_with_truth": s.coherency}
                source = f"the drift history ({s.source})"
    finally:
        await store.close()
    age = None if report is None else _age(report.get("measured_at"), now)
    if report is None or age is None or age > STAND_IN_MAX_AGE_S:
        return PartHealth("resonance", Level.UNKNOWN, f"{name} coherency unknown: {locked}", name, {})
    counts = {k: int(report.get(k) or 0) for k in ("matched", "stale", "missing", "orphaned")}
    coherency = float(report["coherency_with_truth"])
    verdict = resonance_verdict(coherency, None, name, counts, t)
    figures = {
        "coherency_with_truth": coherency,
        **counts,
        "total": sum(counts.values()),
        "search_ms": None,
        "entries_indexed": None,
        "collection": report.get("collection"),
        "embedder": None,
        "index_state": "owned by another process",
        "measured_by": source,
        "age_s": round(age, 3),
    }
    return PartHealth("resonance", verdict.level, f"{verdict.reason} (as measured by {source})", name, figures)


def _age(stamp: object, now: datetime) -> float | None:
    try:
        return max(0.0, (now - datetime.fromisoformat(str(stamp))).total_seconds())
    except ValueError:
        return None

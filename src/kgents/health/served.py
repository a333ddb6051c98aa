"""Health as a server serves it (`/v1/health`, `/metrics`): the last figures, read over the server's own
connections, with their age; nothing is measured in full and nothing is written on a read.

- resonance: the coherency the measuring relay published in the anchor (`synapse_coherency`, with its age and who
  measured it, and the points it accounted for) and a timed search of one hit;
- durability: the server's own pool (its size and free share), a timed read round trip, and the commit time of the
  freshest live relay's heartbeat (a commit it makes anyway);
- synapse: the queue's figures over the server's queue (expired heartbeats are left for the relays to purge).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from kgents.anchor.handle import PostgresAnchor
from kgents.clock import utcnow
from kgents.config import Settings
from kgents.health.levels import Thresholds, durability_verdict, resonance_verdict
from kgents.health.model import Level, PartHealth
from kgents.health.probes import anchor_backend, anchor_bytes, elapsed_ms, pool_figures
from kgents.health.resonance import PROBE_QUERY, STAND_IN_MAX_AGE_S, index_name

if TYPE_CHECKING:
    from kgents.synapse.metrics import SynapseMetrics
    from kgents.synapse.runtime import Stack


async def served_resonance(stack: Stack, settings: Settings, t: Thresholds) -> PartHealth:
    from kgents.garden.filters import EntryFilter

    name = index_name(settings)
    state = stack.state
    vector = stack.embedders(state.active.embedder).embed([PROBE_QUERY])[0]
    began = time.perf_counter()
    await stack.index.search(state.active.collection, vector, settings.persona, EntryFilter(), limit=1)
    search_ms = elapsed_ms(began)
    stored = await stack.queue.buckets().figure()
    held = None if stored is None else stored.figures.get("index_points")
    # the points the measurement accounted for (checked against the index's count by the relay); a count of
    # our own only without one (on the embedded index a count walks every point)
    points = int(held) if held is not None else await stack.index.count(state.active.collection)
    age = None if stored is None else max(0.0, (utcnow() - stored.measured_at).total_seconds())
    figures: dict[str, Any] = {
        "coherency_with_truth": None,
        "matched": None,
        "stale": None,
        "missing": None,
        "orphaned": None,
        "total": None,
        "search_ms": round(search_ms, 3),
        "entries_indexed": points,
        "collection": state.active.collection,
        "embedder": state.active.embedder,
        "index_state": "ready" if state.pending is None else f"reindexing into {state.pending.collection}",
        "measured_by": None if stored is None else f"relay {stored.measured_by}",
        "age_s": None if age is None else round(age, 3),
    }
    fresh = stored is not None and age is not None and age <= STAND_IN_MAX_AGE_S
    if not fresh or stored is None or stored.figures.get("collection") != state.active.collection:
        why = "no relay has measured it" if stored is None else f"its last figure is {age or 0:.0f} s old"
        return PartHealth("resonance", Level.UNKNOWN, f"{name} coherency unknown: {why}", name, figures)
    counts = {k: int(stored.figures.get(k) or 0) for k in ("matched", "stale", "missing", "orphaned")}
    coherency = float(stored.figures["coherency_with_truth"])
    figures |= {"coherency_with_truth": coherency, **counts, "total": sum(counts.values())}
    verdict = resonance_verdict(coherency, search_ms, name, counts, t)
    return PartHealth("resonance", verdict.level, verdict.reason, name, figures)


async def served_durability(stack: Stack, settings: Settings, t: Thresholds, metrics: SynapseMetrics) -> PartHealth:
    from kgents.synapse.metrics import QUEUE_DEPTH_CAP

    anchor = stack.queue.anchor
    began = time.perf_counter()
    figures: dict[str, Any] = {"pool_size": None, "pool_max": None, "pool_available": None, "read_only": False}
    if isinstance(anchor, PostgresAnchor):
        await anchor.pool.fetchval("SELECT 1")
        figures |= pool_figures(anchor.pool)
    else:  # on the read connection: a health read never queues behind the server's writes
        await anchor.read(lambda c: c.execute("SELECT 1").fetchone())
        figures["read_only"] = anchor.read_only
    figures["connect_ms"] = round(elapsed_ms(began), 3)
    figures["database_bytes"] = await anchor_bytes(anchor)
    beats = [r.stats.get("beat_commit_ms") for r in metrics.relays if r.alive]
    commits = [float(b) for b in beats if b is not None]
    figures["commit_ms"] = min(commits) if commits else None
    figures["pending_events"] = min(metrics.queue_depth, QUEUE_DEPTH_CAP)
    verdict = durability_verdict(figures["commit_ms"], figures["pool_available"], t)
    if figures["commit_ms"] is None:  # no relay beats here: the round trip says the anchor answers
        verdict = durability_verdict(figures["connect_ms"], figures["pool_available"], t)
    return PartHealth("durability", verdict.level, verdict.reason, anchor_backend(settings), figures)

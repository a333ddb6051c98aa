"""Probes of durability (the anchor), reflex (the Spark) and synapse (the relay), each returning one PartHealth.

A probe may raise or hang: `collect_health` runs it under a timeout and turns either into a CRITICAL part. Each
opens its own connections, so a slow part never holds up the others.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from kgents.anchor.handle import Anchor, PostgresAnchor
from kgents.clock import utcnow
from kgents.config import Settings, redact_url
from kgents.health.levels import Thresholds, durability_verdict, reflex_verdict, synapse_verdict
from kgents.health.model import Level, PartHealth
from kgents.synapse.queue import queue_on

if TYPE_CHECKING:
    from kgents.garden.store import GardenStore
    from kgents.soul.spark import SparkStore
    from kgents.synapse.metrics import SynapseMetrics

COMMIT_TRIES = 2
"""Commits timed per probe; the best counts (SQLite serialises writers, so one may wait on another's commit)."""
PROBE_SOUL = "__health_probe__"
"""A soul id no persona uses: the reflex latency probe reads it (always a miss, never written)."""


def anchor_backend(settings: Settings) -> str:
    return "PostgreSQL" if settings.postgres_url else "SQLite"


def spark_backend(settings: Settings) -> str:
    return "Redis" if settings.redis_url else "embedded"


def elapsed_ms(began: float) -> float:
    return (time.perf_counter() - began) * 1000.0


async def probe_durability(settings: Settings, t: Thresholds) -> PartHealth:
    """Reachable, a timed real commit, pool use, pending CDC events and the database size."""
    from kgents.garden.store import open_store

    began = time.perf_counter()
    store = await open_store(settings)
    try:
        connect_ms = elapsed_ms(began)
        figures = await _anchor_figures(store)
        figures["connect_ms"] = round(connect_ms, 3)
    finally:
        await store.close()
    verdict = durability_verdict(figures.get("commit_ms"), figures.get("pool_available"), t)
    return PartHealth("durability", verdict.level, verdict.reason, anchor_backend(settings), figures)


async def _anchor_figures(store: GardenStore) -> dict[str, Any]:
    from kgents.garden.postgres_store import PostgresGardenStore
    from kgents.garden.sqlite_store import SqliteGardenStore
    from kgents.synapse.metrics import QUEUE_DEPTH_CAP

    figures: dict[str, Any] = {"pool_size": None, "pool_max": None, "pool_available": None}
    if isinstance(store, PostgresGardenStore):
        pool = store.anchor.pool
        timings = []
        for _ in range(COMMIT_TRIES):
            began = time.perf_counter()
            await pool.execute("UPDATE health_probe SET beat_at = now(), beats = beats + 1 WHERE id = 1")
            timings.append(elapsed_ms(began))
        figures["commit_ms"] = round(min(timings), 3)
        figures["read_only"] = False
        figures |= pool_figures(pool)
    elif isinstance(store, SqliteGardenStore):
        anchor = store.anchor
        stamp = utcnow().isoformat(timespec="microseconds")

        def commit() -> None:
            with anchor.write() as conn:
                conn.execute("UPDATE health_probe SET beat_at = ?, beats = beats + 1 WHERE id = 1", (stamp,))

        timings = []
        for _ in range(COMMIT_TRIES):  # the best of a few: one that met another writer measures the collision
            began = time.perf_counter()
            if anchor.read_only:  # a read-only home: time a read instead (it cannot commit)
                await anchor.run(lambda: anchor.conn.execute("SELECT 1").fetchone())
            else:
                await anchor.run(commit)
            timings.append(elapsed_ms(began))
        figures["commit_ms"] = round(min(timings), 3)
        figures["read_only"] = anchor.read_only
    figures["database_bytes"] = await anchor_bytes(store.anchor)
    figures["pending_events"] = await queue_on(store.anchor).queue_depth(QUEUE_DEPTH_CAP)
    return figures


_PG_BYTES = (
    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
    " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'"
)


async def anchor_bytes(anchor: Anchor) -> int:
    """The anchor's size: the SQLite file and its WAL, or the schema's tables with their indexes and TOAST."""
    if isinstance(anchor, PostgresAnchor):
        return int(await anchor.pool.fetchval(_PG_BYTES))
    path = anchor.path
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())


def pool_figures(pool: Any) -> dict[str, Any]:
    """An asyncpg pool's size, its maximum and the share of its maximum still free (idle or not yet opened)."""
    size, maximum, idle = pool.get_size(), pool.get_max_size(), pool.get_idle_size()
    return {"pool_size": size, "pool_max": maximum, "pool_available": (maximum - size + idle) / maximum}


def reflex_unconfigured() -> PartHealth:
    return PartHealth(
        "reflex",
        Level.HEALTHY,
        "Redis not configured: the in-process Spark serves each process (not a fault)",
        "embedded",
        {"hit_rate": None, "memory_used_bytes": None, "memory_max_bytes": None, "commands_per_s": None},
        configured=False,
    )


async def probe_reflex(settings: Settings, t: Thresholds) -> PartHealth:
    """Redis when configured: a timed lookup, hit rate, memory, commands/s. Not configured is not a fault."""
    if not settings.redis_url:
        return reflex_unconfigured()
    from kgents.soul.redis_spark import RedisSpark

    spark = await RedisSpark.open(settings.redis_url, settings.spark_prefix, heartbeat=False, strict=True)
    try:
        return await reflex_part(spark, settings, t)
    finally:
        await spark.close()


async def reflex_part(spark: SparkStore, settings: Settings, t: Thresholds) -> PartHealth:
    """The reflex part over an opened Redis Spark (a probe's own, or a server's)."""
    from kgents.soul.metrics import hit_rate, memory_pressure

    began = time.perf_counter()
    await spark.get(settings.persona, PROBE_SOUL)
    latency = elapsed_ms(began)
    stats = await spark.stats()
    if not stats.reachable:
        raise ConnectionError(f"Redis {redact_url(settings.redis_url or '')} stopped answering")
    hits, misses = stats.keyspace_hits or 0, stats.keyspace_misses or 0
    rate = hit_rate(hits, misses)
    pressure = memory_pressure(stats.used_memory_bytes, stats.max_memory_bytes)
    verdict = reflex_verdict(rate, pressure, hits + misses, t)
    figures = {
        "hit_rate": rate,
        "lookups": hits + misses,
        "memory_used_bytes": stats.used_memory_bytes,
        "memory_max_bytes": stats.max_memory_bytes or None,
        "memory_pressure": pressure,
        "commands_per_s": stats.ops_per_second,
        "latency_ms": round(latency, 3),
        "connected_instances": stats.connected_instances,
    }
    return PartHealth("reflex", verdict.level, verdict.reason, "Redis", figures)


def relay_expected(settings: Settings, relays_alive: int) -> bool:
    """A relay (`kgents synapse run`) is expected with PostgreSQL or a Qdrant server; the embedded default drains
    in-process, unless a relay runs there (a `kgents serve` of the home): then it is judged like any other."""
    return bool(settings.postgres_url or settings.qdrant_url) or relays_alive > 0


async def probe_synapse(settings: Settings, t: Thresholds) -> PartHealth:
    """Events processed, oldest pending age, lag, dead letters, breaker, heartbeat age, relays alive."""
    from kgents.garden.store import open_store
    from kgents.synapse.metrics import collect_metrics

    store = await open_store(settings)
    try:
        metrics = await collect_metrics(queue_on(store.anchor))
    finally:
        await store.close()
    return synapse_part(metrics, settings, t)


def synapse_part(metrics: SynapseMetrics, settings: Settings, t: Thresholds) -> PartHealth:
    """The synapse part from the queue's figures."""
    expected = relay_expected(settings, metrics.relays_alive)
    verdict = synapse_verdict(
        pending=metrics.queue_depth,
        oldest_pending_s=metrics.oldest_pending_age_s,
        lag_p95_ms=metrics.latency_p95_ms,
        dead_letters=metrics.dead_letters,
        circuit=metrics.circuit_state,
        relays_alive=metrics.relays_alive,
        relay_expected=expected,
        t=t,
    )
    figures = {
        "events_processed": metrics.processed,
        "events_retried": metrics.retried,
        "pending_events": metrics.queue_depth,
        "oldest_pending_s": metrics.oldest_pending_age_s,
        "lag_p50_ms": metrics.latency_p50_ms,
        "lag_p95_ms": metrics.latency_p95_ms,
        "dead_letters": metrics.dead_letters,
        "circuit": metrics.circuit_state,
        "heartbeat_age_s": metrics.last_heartbeat_age_s,
        "relays_alive": metrics.relays_alive,
        "relay_expected": expected,
        "throughput_per_s": metrics.throughput_per_s,
    }
    backend = "relay" if expected else "in-process"
    return PartHealth("synapse", verdict.level, verdict.reason, backend, figures)

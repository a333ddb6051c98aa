"""Soul and Spark speed: recovery from the cache and from the snapshot, saves, and mode-change propagation between
two processes, on Redis and on the embedded Spark, against a bare redis-py GET/SET baseline in the same process.

The baseline is what the cache path cannot beat (one round trip); the ratios show what parsing, validation and the
revision guard cost. A cached state is served only at the snapshot's revision, read after the cache (the row
`snapshot revision lookup` is that lookup alone; reading both at once measured slower on PostgreSQL). Recover from
cache, p50 / p95 ms, without that check (61ae199) and with it, two paired runs of 300 rounds on one loaded 2-core
machine: Redis + PostgreSQL 0.134-0.148 / 0.23-0.33 → 0.45-0.48 / 2.0-3.2 (one PostgreSQL round trip more);
Redis + SQLite 0.15-0.21 / 1.3-4.0 → 0.25-0.27 / 0.7-1.9; embedded + SQLite 0.094-0.104 / 0.17-0.74 → 0.095-0.104 /
0.14-0.48 (the lookup replaces `PRAGMA data_version`). Propagation is measured by a second `kgents soul watch`
process: publish time to receive time on the same clock.

    python bench/soul.py [--rounds 500] [--hops 100] [--redis-url redis://127.0.0.1:6379/0]
                         [--postgres-url postgresql://127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from rich.console import Console
from rich.table import Table

from kgents.anchor.postgres import drop_schema
from kgents.config import Settings
from kgents.soul.redis_spark import RedisSpark
from kgents.soul.service import SoulService
from kgents.soul.session import open_service, open_soul
from kgents.stats import percentile

console = Console(width=120)
Row = tuple[str, str, str, str, str]


async def timed(
    rounds: int, op: Callable[[int], Awaitable[object]], before: Callable[[int], Awaitable[object]] | None = None
) -> list[float]:
    samples = []
    for i in range(rounds):
        if before is not None:
            await before(i)
        start = time.perf_counter()
        await op(i)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


class Rows:
    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.p50: dict[str, float] = {}

    def add(self, name: str, samples: list[float], baseline: str | None = None) -> None:
        p50 = statistics.median(samples)
        self.p50[name] = p50
        ratio = f"{p50 / self.p50[baseline]:.1f}x {baseline}" if baseline in self.p50 else ""
        self.rows.append((name, f"{p50:.3f}", f"{percentile(samples, 0.95) or 0.0:.3f}", f"{1000 / p50:,.0f}/s", ratio))


async def baseline(url: str, prefix: str, payload: str, rounds: int, rows: Rows) -> None:
    client: Any = aioredis.from_url(url)
    key = f"kgents:{prefix}:bench:raw"
    try:
        rows.add("baseline redis SET", await timed(rounds, lambda i: client.set(key, payload, px=60_000)))
        rows.add("baseline redis GET", await timed(rounds, lambda i: client.get(key)))
        await client.delete(key)
    finally:
        await client.aclose()


async def propagation(settings: Settings, service: SoulService, hops: int) -> list[float]:
    """Mode changes made here, received by a `kgents soul watch` in another process: latency per change in ms."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGENTS_")}
    env.update(
        KGENTS_HOME=str(settings.home),
        KGENTS_REDIS_URL=str(settings.redis_url),
        KGENTS_SPARK_PREFIX=settings.spark_prefix,
        KGENTS_PERSONA=settings.persona,
    )
    if settings.postgres_url:
        env.update(KGENTS_POSTGRES_URL=settings.postgres_url, KGENTS_POSTGRES_SCHEMA=settings.postgres_schema)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; from kgents.cli.app import main; main(sys.argv[1:])",
        *("soul", "watch", "--soul", "b1", "--count", str(hops), "--json"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    spark = service.spark
    assert isinstance(spark, RedisSpark) and child.stdout is not None
    deadline = time.monotonic() + 30
    while await spark.listeners(service.persona, "b1") < 1:
        if time.monotonic() > deadline:
            raise RuntimeError("the watcher process did not subscribe within 30 s")
        await asyncio.sleep(0.01)
    latencies = []
    modes = ("ADVISE", "CHALLENGE", "EXPLORE", "REFLECT")
    for i in range(hops):
        await service.set_mode("b1", modes[i % 4])
        line = await asyncio.wait_for(child.stdout.readline(), timeout=10)
        latencies.append(float(json.loads(line)["latency_ms"]))
    await asyncio.wait_for(child.wait(), timeout=10)
    return latencies


async def bench(settings: Settings, rounds: int, hops: int) -> Rows:
    rows = Rows()
    service = await open_service(settings, strict_spark=True)
    try:
        state = (await service.recover("b1")).state
        if settings.redis_url:
            await baseline(settings.redis_url, settings.spark_prefix, state.to_json(), rounds, rows)
        base_get = "baseline redis GET" if settings.redis_url else None
        base_set = "baseline redis SET" if settings.redis_url else None
        rows.add("snapshot revision lookup", await timed(rounds, lambda i: service.snapshots.revision("kent", "b1")))
        rows.add("recover from cache", await timed(rounds, lambda i: service.recover("b1")), base_get)
        rows.add(
            "recover from snapshot",
            await timed(rounds, lambda i: service.recover("b1"), before=lambda i: service.spark.delete("kent", "b1")),
            "recover from cache",
        )
        current = [(await service.recover("b1")).state]

        async def save(i: int) -> None:
            current[0] = await service.save(current[0].with_eigenvector("joy", (i % 100) / 100))

        rows.add("save (snapshot + cache)", await timed(rounds, save), base_set)
        rows.add(
            "set_mode (read, save, publish)",
            await timed(rounds, lambda i: service.set_mode("b1", ("ADVISE", "EXPLORE")[i % 2])),
        )

        async def cold_open(i: int) -> None:
            async with await open_soul(replace(settings), "b1"):
                pass

        rows.add("open_soul (connect + recover)", await timed(max(10, rounds // 25), cold_open))
        if settings.redis_url and hops:
            rows.add("mode change → other process", await propagation(settings, service, hops))
        metrics = await service.metrics()
        console.print(
            f"  reflex: hit rate {metrics.hit_rate:.0%}, cache op p50 {metrics.latency_p50_ms:.3f} ms"
            f" p95 {metrics.latency_p95_ms:.3f} ms, {metrics.connected_instances} instance(s), level {metrics.level}"
        )
    finally:
        await service.close()
    return rows


async def delete_prefix(url: str, prefix: str) -> None:
    client: Any = aioredis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=f"kgents:{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--hops", type=int, default=100, help="mode changes sent to the other process")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--postgres-url", default="postgresql://127.0.0.1:5432/test")
    args = parser.parse_args()
    logging.getLogger("kgents.soul").setLevel(logging.ERROR)  # every "recover from snapshot" round is a cache miss
    tag = uuid.uuid4().hex[:8]
    schema, prefix = f"kgents_bench_{tag}", f"bench_{tag}"
    with tempfile.TemporaryDirectory() as home:
        base = Settings(home=Path(home), persona="kent", spark_prefix=prefix)
        configs = (
            (
                "Redis + PostgreSQL",
                replace(base, redis_url=args.redis_url, postgres_url=args.postgres_url, postgres_schema=schema),
            ),
            ("Redis + SQLite", replace(base, redis_url=args.redis_url, home=Path(home) / "r")),
            ("embedded + SQLite", replace(base, home=Path(home) / "e")),
        )
        try:
            for name, settings in configs:
                console.print(f"[bold]{name}[/]: {args.rounds} rounds")
                rows = await bench(settings, args.rounds, args.hops)
                table = Table(title=name, title_justify="left")
                for column in ("operation", "p50 ms", "p95 ms", "throughput", "ratio"):
                    table.add_column(column, justify="left" if column in ("operation", "ratio") else "right")
                for row in rows.rows:
                    table.add_row(*row)
                console.print(table)
        finally:
            await delete_prefix(args.redis_url, prefix)
            await drop_schema(args.postgres_url, schema)


if __name__ == "__main__":
    asyncio.run(main())

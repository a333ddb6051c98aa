"""What a health read and a relay's idle beat cost at N entries, beside the old full measurement run in the same
process (issue 17): the embedded default (SQLite + the embedded index) through the served home.

    python bench/health_cost.py [--entries 10000 100000] [--rounds 20] [--dir /dev/shm] [--postgres URL]

`--postgres`: the anchor in a schema of its own on that server (dropped afterwards), the index embedded.

- scrape: `/v1/health` / `/metrics` (`ServedHome.health()` rendered for Prometheus): today's (the published figure,
  the server's own pool, no write) against the old one (a full coherency scan of both stores, a new store with
  three commits and a drift sample) on the same served home, in alternating rounds;
- idle beat: a relay's heartbeat and coherency measurement with no writes, by bucket against the full scan;
- bytes per entry of the anchor (SQLite file + WAL) and of the index folder, what the outbox payload cost (the
  JSON row it copied, as the audit's new_row holds it), and the audit of a nurture as a diff against two rows.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

from kgents.clock import utcnow
from kgents.config import Settings
from kgents.health.collect import collect_health, default_probes
from kgents.health.probes import anchor_bytes
from kgents.health.prometheus import render_prometheus
from kgents.health.resonance import measure_resonance
from kgents.memory.api import MemoryItem
from kgents.server.served_home import ServedHome
from kgents.stats import percentile
from kgents.synapse.coherency import measure
from kgents.synapse.metrics import RelayStats
from kgents.synapse.relay_beats import RelayBeats

BATCH = 1000
INSERTED = "SELECT avg(length(new_row)), count(*) FROM garden_audit WHERE operation = 'INSERT'"
INSERTED_PG = "SELECT avg(length(new_row::text)), count(*) FROM garden_audit WHERE operation = 'INSERT'"
UPDATED = "SELECT avg(length(old_row) + length(new_row)) FROM garden_audit WHERE operation = 'UPDATE'"
UPDATED_PG = "SELECT avg(length(old_row::text) + length(new_row::text)) FROM garden_audit WHERE operation = 'UPDATE'"


def line(name: str, samples: list[float], base: list[float] | None = None) -> str:
    p50, p95 = percentile(samples, 0.5) or 0.0, percentile(samples, 0.95) or 0.0
    ratio = ""
    if base:
        ratio = f"   {(percentile(base, 0.5) or 0.0) / max(p50, 1e-9):8.1f}x cheaper (p50)"
    return f"{name:<40} p50 {p50:9.3f} ms   p95 {p95:9.3f} ms{ratio}"


async def alternate(rounds: int, *ops: Callable[[], Awaitable[object]]) -> list[list[float]]:
    samples: list[list[float]] = [[] for _ in ops]
    for _ in range(rounds):
        for op, out in zip(ops, samples, strict=True):
            began = time.perf_counter()
            await op()
            out.append((time.perf_counter() - began) * 1000)
    return samples


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


async def run(entries: int, rounds: int, root: Path, postgres: str | None) -> None:
    schema = f"health_bench_{os.getpid()}_{entries}"
    settings = Settings(home=root / f"home-{entries}", postgres_url=postgres, postgres_schema=schema)
    served = await ServedHome.open(settings)
    try:
        memory = await served.memory("kent")
        for start in range(0, entries, BATCH):
            items = [MemoryItem(f"memory {i} about health checks and their cost") for i in range(start, start + BATCH)]
            await memory.remember_many(items[: max(0, min(BATCH, entries - start))])
        stack = served.stack
        stats = RelayStats()
        beats = RelayBeats(
            stack.queue,
            stack.index,
            stats,
            f"bench:{socket.gethostname()}:{os.getpid()}",
            utcnow(),
            heartbeat_interval_s=2.0,
            coherency_interval_s=2.0,
        )
        await beats.measure_coherency()  # the first measurement is full; then only what changed

        async def old_scrape() -> None:
            probes = default_probes(record="server")
            probes["resonance"] = partial(measure_resonance, stack, record="server", full=True)
            render_prometheus(await collect_health(settings, probes=probes, drain=False))

        async def new_scrape() -> None:
            render_prometheus(await served.health())

        async def old_beat() -> None:
            await beats.beat()
            state = await stack.queue.read_state()
            assert state is not None
            await measure(stack.queue, stack.index, state.active)

        async def new_beat() -> None:
            await beats.beat()
            await beats.measure_coherency()

        scrape_rounds = rounds if entries <= 20_000 else max(5, rounds // 4)
        new_s, old_s = await alternate(scrape_rounds, new_scrape, old_scrape)
        new_b, old_b = await alternate(scrape_rounds, new_beat, old_beat)
        anchor = "PostgreSQL" if postgres else "SQLite"
        print(f"\n== {entries:,} entries, {anchor} ({scrape_rounds} rounds each, alternating)")
        print(line("scrape: last figures (now)", new_s, old_s))
        print(line("scrape: full measurement (before)", old_s))
        print(line("idle relay beat: by bucket (now)", new_b, old_b))
        print(line("idle relay beat: full scan (before)", old_b))
        cpu = await idle_cpu(new_beat, scrape_rounds)
        share = cpu / (1000.0 * beats.coherency_interval_s) * 100.0
        print(f"{'idle relay beat: CPU (now)':<40} {cpu:9.3f} ms   = {share:.2f} % of a core at one beat per 2 s")
        for entry in (await memory.list(limit=200))[:200]:
            await memory.nurture(entry.id, evidence="seen again in the health bench")
        await report_bytes(served, settings, entries)
    finally:
        await served.close()
        if postgres:
            await drop_schema(postgres, schema)


async def idle_cpu(beat: Callable[[], Awaitable[object]], rounds: int) -> float:
    """CPU milliseconds (this process, every thread) one idle beat costs, on average."""
    began = time.process_time()
    for _ in range(rounds):
        await beat()
    return (time.process_time() - began) * 1000.0 / rounds


async def drop_schema(url: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def report_bytes(served: ServedHome, settings: Settings, entries: int) -> None:
    queue: Any = served.stack.queue
    if queue.backend == "sqlite":
        await queue.db.run(lambda: queue.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())
    anchor = await anchor_bytes(queue.anchor)
    cast = queue.backend == "postgres"
    payload, audits = await fetchrow(queue, INSERTED_PG if cast else INSERTED)
    update = float((await fetchrow(queue, UPDATED_PG if cast else UPDATED))[0] or 0.0)
    index = folder_bytes(settings.home / "index")
    print(f"{'anchor bytes per entry':<40} {anchor / entries:9.0f}   ({anchor:,} bytes, {audits:,} audit rows)")
    print(f"{'index bytes per entry':<40} {index / entries:9.0f}   ({index:,} bytes)")
    print(f"{'outbox payload no longer stored':<40} {payload or 0:9.0f}   bytes per pending event (est.)")
    full = 2 * (payload or 0)
    print(f"{'audit of a nurture, as a diff':<40} {update:9.0f}   bytes (two full rows, est.: ~{full:.0f})")


async def fetchrow(queue: Any, sql: str) -> tuple[Any, ...]:
    if queue.backend == "postgres":
        return tuple(await queue.pool.fetchrow(sql))
    return tuple(await queue.db.run(lambda: queue.db.conn.execute(sql).fetchone()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--postgres", default=None, help="a PostgreSQL URL: the anchor there, in a schema of its own")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for n in args.entries:
            asyncio.run(run(n, args.rounds, Path(tmp), args.postgres))


if __name__ == "__main__":
    main()

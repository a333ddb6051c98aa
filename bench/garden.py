"""Garden throughput on both anchors: plant, plant_many, get, nurture and query, against a raw-driver baseline.

The baseline is the same single-row INSERT through the bare driver into a table without triggers, run in the same
process, so the ratio shows what validation, the outbox and the audit trail cost.

    python bench/garden.py [--entries 10000] [--rounds 500] [--postgres-url postgresql://127.0.0.1/test]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from kgents.anchor.postgres import drop_schema
from kgents.config import Settings
from kgents.garden.filters import EntryFilter
from kgents.garden.model import Lifecycle
from kgents.garden.records import GardenQuery
from kgents.garden.service import PersonaGarden
from kgents.garden.store import open_store
from kgents.stats import percentile

console = Console()


async def timed(rounds: int, op: Callable[[int], Awaitable[object]]) -> list[float]:
    samples = []
    for i in range(rounds):
        start = time.perf_counter()
        await op(i)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


async def baseline_insert(settings: Settings, rounds: int) -> list[float]:
    """Raw single-row inserts into a trigger-less table: the floor any garden write stands on."""
    if settings.postgres_url:
        import asyncpg

        conn = await asyncpg.connect(settings.postgres_url)
        await conn.execute(f'SET search_path = "{settings.postgres_schema}"')
        await conn.execute("CREATE TABLE IF NOT EXISTS bench_raw (id UUID PRIMARY KEY, content TEXT)")
        try:
            sql = "INSERT INTO bench_raw VALUES ($1, $2)"
            return await timed(rounds, lambda i: conn.execute(sql, uuid.uuid4(), "x"))
        finally:
            await conn.close()
    import sqlite3

    conn2 = sqlite3.connect(settings.sqlite_path, isolation_level=None)
    conn2.execute("PRAGMA synchronous = FULL")
    conn2.execute("CREATE TABLE IF NOT EXISTS bench_raw (id TEXT PRIMARY KEY, content TEXT)")

    async def insert(_: int) -> None:
        conn2.execute("BEGIN IMMEDIATE")
        conn2.execute("INSERT INTO bench_raw VALUES (?, ?)", (str(uuid.uuid4()), "x"))
        conn2.execute("COMMIT")

    try:
        return await timed(rounds, insert)
    finally:
        conn2.close()


async def bench_backend(settings: Settings, entries: int, rounds: int) -> list[tuple[str, str, str, str, str]]:
    store = await open_store(settings)
    garden = PersonaGarden(store, "bench")
    rows: list[tuple[str, str, str, str, str]] = []

    def add(name: str, samples: list[float], baseline: list[float] | None = None) -> None:
        p50 = statistics.median(samples)
        ratio = f"{p50 / statistics.median(baseline):.1f}x" if baseline else ""
        rows.append((name, f"{p50:.3f}", f"{percentile(samples, 0.95) or 0.0:.3f}", f"{1000 / p50:,.0f}/s", ratio))

    try:
        base = await baseline_insert(settings, rounds)
        add("baseline raw INSERT", base)
        planted = []

        async def plant(i: int) -> None:
            planted.append(await garden.plant(f"single plant {i}", "PATTERN", tags=["bench"]))

        add("plant (1 entry)", await timed(rounds, plant), base)

        batch = [
            garden.new_entry(f"bulk pattern {i}", "PATTERN", confidence=(i % 100) / 100, tags=[f"t{i % 10}"])
            for i in range(entries)
        ]
        start = time.perf_counter()
        await garden.plant_many(batch)
        seconds = time.perf_counter() - start
        rows.append((f"plant_many ({entries:,})", f"{seconds * 1000:.0f} total", "", f"{entries / seconds:,.0f}/s", ""))

        add("get", await timed(rounds, lambda i: garden.get(batch[(i * 7919) % entries].id)))
        add("nurture", await timed(rounds, lambda i: garden.nurture(planted[i % len(planted)].id, evidence=f"e{i}")))
        flt = EntryFilter(tags=("t3",), min_confidence=0.5, lifecycles=(Lifecycle.SEED,))
        twenty = GardenQuery(limit=20)
        add("query tags+conf+stage (20)", await timed(rounds, lambda i: garden.query(flt, twenty)))
        add("query text (20)", await timed(rounds, lambda i: garden.query(EntryFilter(text=f"pattern {i}"), twenty)))
        add("count", await timed(min(rounds, 200), lambda i: garden.count()))
    finally:
        await store.close()
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--postgres-url", default="postgresql://127.0.0.1:5432/test")
    args = parser.parse_args()
    schema = f"kgents_bench_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as home:
        for name, settings in (
            ("SQLite (embedded)", Settings(home=Path(home))),
            ("PostgreSQL", Settings(home=Path(home), postgres_url=args.postgres_url, postgres_schema=schema)),
        ):
            with console.status(f"benchmarking {name}…"):
                try:
                    rows = await bench_backend(settings, args.entries, args.rounds)
                finally:
                    if settings.postgres_url:
                        await drop_schema(args.postgres_url, schema)
            table = Table(title=f"{name}: {args.rounds} rounds, {args.entries:,} bulk entries", title_justify="left")
            for column in ("operation", "p50 ms", "p95 ms", "throughput", "vs baseline"):
                table.add_column(column, justify="left" if column == "operation" else "right")
            for row in rows:
                table.add_row(*row)
            console.print(table)


if __name__ == "__main__":
    asyncio.run(main())

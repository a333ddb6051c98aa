"""The Python face on the embedded default (SQLite + the embedded index, the static embedder): remember until
searchable, remember_many in batches of 100, and recall at N entries, each beside a baseline measured in the same
run (today's plant + in-process drain, and a raw SQLite INSERT into a table without triggers).

    python bench/memory.py [--entries 10000] [--rounds 300] [--dir /dev/shm]

`--dir` puts the home there: on a tmpfs (/dev/shm) the figures leave out the disk's fsync and show the software's
own cost; the raw INSERT line shows what one commit costs wherever it runs.

recall is the face's (`AsyncMemory.recall`: hybrid, limit 10, hydrated from the anchor), which walks the same path
as bench/resonance.py's "recall hybrid" (`Synapse.recall()`). Its five queries repeat, so the query's embedding
comes from the embedder's cache; the "query embedded" line empties that cache first, as bench/resonance.py's new
queries do (its figure is higher still by its 384-d default model and its garden: the 256-d model is set here).

Targets (issue 8): remember p50 <= 1 ms, batches >= 5,000 entries/s, recall p50 <= 1.5 ms at 10k entries.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from kgents.config import Settings
from kgents.garden.service import PersonaGarden
from kgents.memory.api import MemoryItem
from kgents.memory.local import AsyncMemory
from kgents.stats import percentile

BATCH = 100


async def timed(rounds: int, op: Callable[[int], Awaitable[object]]) -> list[float]:
    samples = []
    for i in range(rounds):
        start = time.perf_counter()
        await op(i)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


async def alternate(rounds: int, *ops: Callable[[int], Awaitable[object]]) -> list[list[float]]:
    """The operations, round after round in turn, so a busy machine weighs on all alike."""
    samples: list[list[float]] = [[] for _ in ops]
    for i in range(rounds):
        for op, out in zip(ops, samples, strict=True):
            start = time.perf_counter()
            await op(i)
            out.append((time.perf_counter() - start) * 1000)
    return samples


def line(name: str, samples: list[float]) -> str:
    p50, p95 = percentile(samples, 0.5) or 0.0, percentile(samples, 0.95) or 0.0
    return f"{name:<44} p50 {p50:7.3f} ms   p95 {p95:7.3f} ms"


def raw_insert_ms(folder: Path, rounds: int) -> list[float]:
    """One INSERT + COMMIT per row through the bare driver (WAL, synchronous=FULL, like the anchor)."""
    conn = sqlite3.connect(folder / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, content TEXT)")
    samples = []
    for i in range(rounds):
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (content) VALUES (?)", (f"row {i}",))
        conn.execute("COMMIT")
        samples.append((time.perf_counter() - start) * 1000)
    conn.close()
    return samples


async def main(entries: int, rounds: int, where: str | None) -> None:
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        folder = Path(tmp)
        settings = Settings(home=folder / "home", embedder="minilm-static-256")
        async with AsyncMemory("kent", settings) as memory:
            backend = memory.synapse.index.backend
            print(f"kgents face bench: {entries:,} entries, {rounds} rounds, index {backend}, home in {folder}")
            print(line("raw SQLite INSERT + COMMIT (baseline)", raw_insert_ms(folder, rounds)))
            garden = PersonaGarden(memory.garden.store, "kent")

            async def plant_and_drain(i: int) -> None:
                await garden.plant(f"baseline note {i} about tabs and spaces", "INSIGHT")
                await memory.synapse.drain()

            async def remember(i: int) -> None:
                await memory.remember(f"note {i} about small modules and tests")

            old, new = await alternate(rounds, plant_and_drain, remember)  # side by side: the same load on both
            print(line("plant + drain (today's path, baseline)", old))
            print(line("remember until searchable", new))

            batches = max(1, (entries - 2 * rounds) // BATCH)
            started = time.perf_counter()
            for b in range(batches):
                items = [MemoryItem(f"fact {b}-{j}: the garden grows {j % 17} trees") for j in range(BATCH)]
                await memory.remember_many(items)
            took = time.perf_counter() - started
            print(f"{'remember_many, batches of 100':<44} {batches * BATCH / took:10,.0f} entries/s")
            total = (await memory.status())["entries"]
            queries = ["small modules", "tabs or spaces", "how many trees", "tests first", "the garden"]

            async def semantic(i: int) -> None:
                await memory.recall(queries[i % len(queries)], limit=10, mode="dense")

            async def recall(i: int) -> None:
                await memory.recall(queries[i % len(queries)], limit=10)

            embedder = memory.synapse.embedders(memory.synapse.state.active.embedder)

            async def embedded(i: int) -> None:
                getattr(embedder, "clear", lambda: None)()  # the query embedded again (the clear costs µs)
                await memory.recall(queries[i % len(queries)], limit=10)

            old, new, fresh = await alternate(rounds, semantic, recall, embedded)
            print(line(f"dense recall (baseline) at {total:,} entries", old))
            print(line(f"recall (limit 10) at {total:,} entries", new))
            print(line("recall, the query embedded (not cached)", fresh))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--dir", default=None, help="where to make the temporary home (default: the system's)")
    args = parser.parse_args()
    asyncio.run(main(args.entries, args.rounds, args.dir))

"""The dream at scale: what a dream costs over a large garden with a few new entries, and a second dream after it.

    python bench/dream.py [--entries 100000] [--new 100] [--rounds 5] [--dir /dev/shm] [--postgres-url URL]
                          [--decay] [--json]

It plants `--entries` entries through the face (`remember_many`, in batches) into a new home (the embedded default,
or a throwaway schema of `--postgres-url`), marks them weighed as a previous dream would have left them, then, each
round, plants `--new` entries (a tenth of them pairs restating an existing entry, so each such pair makes a group of
three the dream merges) and times, in order: a dry run, the dream, and a second dream. "written" counts the audit
rows the dream added (every entry write leaves one): the merges and promotions, and nothing on the second dream.
The baseline, measured in the same rounds, is the one thing a dream cannot skip: a dense recall per new entry.
`--decay` then dreams once 40 days later, when every entry is stale: one statement decays them all.

Targets (issue 15): the dream over 100,000 entries with 100 new ones <= 2 s; a second dream <= 0.2 s, writing
nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from kgents.anchor.postgres import drop_schema
from kgents.clock import utcnow
from kgents.config import Settings
from kgents.hypnagogia import HypnagogicCycle
from kgents.memory.api import MemoryItem
from kgents.memory.local import AsyncMemory
from kgents.stats import percentile

T = TypeVar("T")
PLANT_BATCH = 5000
PERSONA = "bench"
OPENERS = ("I like", "I prefer", "My team uses", "We usually", "I never", "I always", "My sister loves", "I want")


def vocabulary() -> list[str]:
    """Plain words of the bundled embedder's vocabulary (so texts are varied, and each has a meaning to it)."""
    path = resources.files("kgents.resonance").joinpath("models", "minilm-mpnet-static-384", "tokenizer.json")
    vocab = json.loads(path.read_text("utf-8"))["model"]["vocab"]
    return sorted(w for w in vocab if re.fullmatch(r"[a-z]{4,12}", w))


class Texts:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.words = vocabulary()
        self.topics = self.words[:: len(self.words) // 300][:300]

    def one(self) -> str:
        topic = " ".join(self.rng.sample(self.topics, 2))
        return f"{self.rng.choice(OPENERS)} {topic} {' '.join(self.rng.sample(self.words, 4))}"


async def timed(work: Callable[[], Awaitable[T]]) -> tuple[float, T]:
    began = time.perf_counter()
    result = await work()
    return (time.perf_counter() - began) * 1000.0, result


async def audit_rows(memory: AsyncMemory) -> int:
    """Every entry write leaves one audit row: the count moves by what was written."""
    store = memory.garden.store
    sql = "SELECT count(*) FROM garden_audit WHERE persona = "
    if store.backend == "postgres":
        return int(await store.anchor.pool.fetchval(sql + "$1", PERSONA))  # type: ignore[attr-defined]
    db = store.anchor  # type: ignore[attr-defined]
    return int(await db.run(lambda: db.conn.execute(sql + "?", (PERSONA,)).fetchone()[0]))


async def plant_garden(memory: AsyncMemory, texts: Texts, entries: int) -> tuple[float, list[str]]:
    """Plant `entries` entries and mark them weighed (the garden as the last dream left it); entries/s, contents."""
    contents: list[str] = []
    began = time.perf_counter()
    for start in range(0, entries, PLANT_BATCH):
        batch = [texts.one() for _ in range(min(PLANT_BATCH, entries - start))]
        planted = await memory.remember_many([MemoryItem(t, "PREFERENCE", evidence=[t]) for t in batch])
        await memory.garden.store.dream_ledger().settle(PERSONA, [(e.id, e.version) for e in planted])
        contents += batch
    return entries / (time.perf_counter() - began), contents


async def build_graph(memory: AsyncMemory) -> float | None:
    """The embedded index's HNSW graph built over the planted garden, as a garden that has lived a while has it (the
    index builds one by itself once 20,000 points wait); the seconds it took, or None where there is none to build."""
    synapse = memory.synapse
    optimize = getattr(synapse.index, "optimize", None)
    if optimize is None:
        return None
    began = time.perf_counter()
    await optimize(synapse.state.active.collection)
    return time.perf_counter() - began


async def plant_new(memory: AsyncMemory, texts: Texts, existing: list[str], new: int) -> None:
    pairs = new // 10 // 2
    restated = [f"{opener} {t}" for t in texts.rng.sample(existing, pairs) for opener in ("Honestly,", "Really,")]
    fresh = [texts.one() for _ in range(new - len(restated))]
    await memory.remember_many([MemoryItem(t, "PREFERENCE", evidence=[t]) for t in [*fresh, *restated]])
    existing += fresh


async def recall_floor(memory: AsyncMemory, texts: list[str]) -> float:
    """The baseline: one dense recall per new entry, as the dream's own neighbour lookups ask it."""
    began = time.perf_counter()
    for text in texts:
        await memory.recall(text, limit=200, mode="dense", min_score=0.57)
    return (time.perf_counter() - began) * 1000.0


async def round_of(memory: AsyncMemory, texts: Texts, existing: list[str], new: int) -> dict[str, Any]:
    await plant_new(memory, texts, existing, new)
    floor = await recall_floor(memory, [texts.one() for _ in range(new)])
    dry_ms, would = await timed(lambda: HypnagogicCycle(memory).dream(dry_run=True))
    before = await audit_rows(memory)
    dream_ms, did = await timed(lambda: HypnagogicCycle(memory).dream())
    middle, soul = await audit_rows(memory), (await memory.soul()).revision
    again_ms, again = await timed(lambda: HypnagogicCycle(memory).dream())
    after = await audit_rows(memory)
    return {
        "dry_run_ms": dry_ms,
        "dream_ms": dream_ms,
        "second_ms": again_ms,
        "floor_ms": floor,
        "would_write": would.written,
        "written": middle - before,
        "second_written": after - middle,
        "second_changed": again.changed or (await memory.soul()).revision != soul,
        "learned": did.learned,
        "promoted": len(did.promoted),
        "composted": len(did.composted),
    }


async def decay_round(memory: AsyncMemory) -> dict[str, Any]:
    later = utcnow() + timedelta(days=40)
    dry_ms, would = await timed(lambda: HypnagogicCycle(memory).dream(now=later, dry_run=True))
    dream_ms, did = await timed(lambda: HypnagogicCycle(memory).dream(now=later))
    again_ms, again = await timed(lambda: HypnagogicCycle(memory).dream(now=later))
    return {
        "dry_run_ms": dry_ms,
        "would_decay": would.decayed,
        "dream_ms": dream_ms,
        "decayed": did.decayed,
        "second_ms": again_ms,
        "second_decayed": again.decayed,
    }


def p50(rows: list[dict[str, Any]], key: str) -> float:
    return percentile([r[key] for r in rows], 0.5) or 0.0


def p95(rows: list[dict[str, Any]], key: str) -> float:
    return percentile([r[key] for r in rows], 0.95) or 0.0


def report(result: dict[str, Any]) -> None:
    rows = result["rounds"]
    graph = "no graph built" if result["graph_s"] is None else f"its HNSW graph built in {result['graph_s']:.0f} s"
    print(
        f"garden: {result['entries']:,} entries planted at {result['plant_per_s']:,.0f}/s, {graph};"
        f" {result['new']} new a round,"
        f" {len(rows)} rounds; {result['anchor']}; load average {result['load']}"
    )
    for name, key in (
        ("dry run", "dry_run_ms"),
        ("dream", "dream_ms"),
        ("second dream", "second_ms"),
        ("baseline: a dense recall per new entry", "floor_ms"),
    ):
        print(f"{name:<40} p50 {p50(rows, key):9.1f} ms   p95 {p95(rows, key):9.1f} ms")
    last = rows[-1]
    print(
        f"written by the dream: {[r['written'] for r in rows]} entries (would: {[r['would_write'] for r in rows]});"
        f" promoted {last['promoted']}, composted {last['composted']}, learned {last['learned']} in the last round"
    )
    print(
        f"written by the second dream: {[r['second_written'] for r in rows]} entries;"
        f" changed anything: {any(r['second_changed'] for r in rows)}"
    )
    if "decay" in result:
        d = result["decay"]
        print(
            f"40 days on: dry run {d['dry_run_ms']:.0f} ms ({d['would_decay']:,} would decay); dream"
            f" {d['dream_ms']:.0f} ms ({d['decayed']:,} decayed in one statement, the index following);"
            f" again {d['second_ms']:.1f} ms ({d['second_decayed']} decayed)"
        )


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        schema = f"kgents_bench_dream_{uuid.uuid4().hex[:8]}"
        settings = Settings(home=Path(tmp) / "home", persona=PERSONA)
        if args.postgres_url:
            settings = Settings(
                home=settings.home, persona=PERSONA, postgres_url=args.postgres_url, postgres_schema=schema
            )
        try:
            async with AsyncMemory(settings=settings) as memory:
                texts = Texts(15)
                rate, existing = await plant_garden(memory, texts, args.entries)
                built_s = None if args.exact else await build_graph(memory)
                rows = [await round_of(memory, texts, existing, args.new) for _ in range(args.rounds)]
                result: dict[str, Any] = {
                    "entries": args.entries,
                    "new": args.new,
                    "plant_per_s": rate,
                    "graph_s": built_s,
                    "anchor": settings.anchor_backend,
                    "rounds": rows,
                }
                if args.decay:
                    result["decay"] = await decay_round(memory)
        finally:
            if args.postgres_url:
                await drop_schema(args.postgres_url, schema)
    result["load"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    result["summary"] = {k: p50(rows, k) for k in ("dry_run_ms", "dream_ms", "second_ms", "floor_ms")}
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--new", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", default=None, help="where the throwaway home goes (e.g. /dev/shm)")
    parser.add_argument("--postgres-url", default=None, help="the anchor on PostgreSQL, in a throwaway schema")
    parser.add_argument("--decay", action="store_true", help="also dream 40 days later (every entry stale)")
    parser.add_argument("--exact", action="store_true", help="do not build the index's HNSW graph after planting")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    options = parser.parse_args()
    outcome = asyncio.run(main(options))
    if options.json:
        print(json.dumps(outcome))
    else:
        report(outcome)

"""Resonance and Synapse figures: search latency, write → searchable latency, relay throughput, embedder speed.

For each anchor (embedded SQLite, PostgreSQL) and size, on the index `open_synapse` picks (embedded: qdrant-edge
under a temporary KGENTS_HOME):
- embedder sentences/s (raw model, no cache), as the baseline every other figure stands on;
- relay throughput: N planted entries drained from the outbox into the index (events/s);
- search p50/p95 with the query embedding included (dense recall, hydrated from the anchor), and
  the same for recall with the lexical signal alone and the hybrid (`Synapse.recall()`, the walk the Python
  face's `recall` takes too: bench/memory.py times it through `AsyncMemory`). Each query is new (a number
  appended), so the query is embedded every time (about 0.3 ms with the default 384-d model); bench/memory.py's
  recall line asks five queries over and over on the 256-d model, answered from the embedding cache, so its
  figure is lower by about that much (its "query embedded" line adds it back);
- write → searchable p50/p95 under a steady write load (a relay running, one write every 1/rate s, each write
  polled until the index holds its version).

    python bench/resonance.py [--sizes 10000,100000] [--anchors embedded,postgres] [--queries 200] [--writes 200]
        [--build]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from kgents.anchor.postgres import drop_schema
from kgents.config import Settings
from kgents.garden.service import PersonaGarden
from kgents.stats import percentile
from kgents.synapse.fusion import RecallMode
from kgents.synapse.relay import RelayConfig
from kgents.synapse.runtime import Synapse, open_synapse

PERSONA = "bench"
SUBJECTS = [
    "I",
    "the team",
    "my editor",
    "our reviews",
    "the build",
    "every module",
    "a good test",
    "the persona",
    "this codebase",
    "the relay",
    "a small helper",
    "the night shift",
]
VERBS = [
    "prefer",
    "avoid",
    "insist on",
    "keep",
    "value",
    "distrust",
    "celebrate",
    "question",
    "document",
    "measure",
    "simplify",
    "postpone",
]
OBJECTS = [
    "minimal code",
    "long meetings",
    "sunny weather",
    "clear names",
    "deep hierarchies",
    "quick feedback",
    "careful reviews",
    "playful prose",
    "abstract plans",
    "concrete examples",
    "quiet mornings",
    "loud alerts",
    "strict types",
    "gentle refactors",
    "heavy frameworks",
]
QUALIFIERS = [
    "when tired",
    "on Mondays",
    "in every review",
    "for new people",
    "above all",
    "most of the time",
    "under pressure",
    "with friends",
    "at night",
    "in production",
    "during demos",
    "by habit",
]
QUERIES = [
    "keep things small",
    "I like short meetings",
    "clear variable names",
    "fast feedback loops",
    "avoid heavy frameworks",
    "write concrete examples",
    "careful code review",
    "quiet mornings help",
    "strict typing everywhere",
    "playful writing style",
]


def sentence(rng: random.Random, i: int) -> str:
    return f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(QUALIFIERS)} #{i}"


def ms(values: list[float]) -> str:
    p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
    return f"p50 {p50:.2f} ms, p95 {p95:.2f} ms" if p50 is not None and p95 is not None else "-"


def embedder_rate(synapse: Synapse, n: int = 10_000) -> float:
    embedder: Any = synapse.embedders(synapse.state.active.embedder)
    raw = getattr(embedder, "inner", embedder)
    texts = [sentence(random.Random(7), i) for i in range(n)]
    raw.embed(texts[:100])
    began = time.perf_counter()
    for start in range(0, n, 1_000):
        raw.embed(texts[start : start + 1_000])
    return n / (time.perf_counter() - began)


async def plant(garden: PersonaGarden, n: int, rng: random.Random) -> float:
    began = time.perf_counter()
    for start in range(0, n, 5_000):
        batch = [
            garden.new_entry(sentence(rng, i), "PREFERENCE", confidence=rng.random())
            for i in range(start, min(n, start + 5_000))
        ]
        await garden.plant_many(batch)
    return time.perf_counter() - began


async def recall_latencies(synapse: Synapse, queries: int, rng: random.Random, mode: RecallMode) -> list[float]:
    recall = synapse.recall()
    await recall.recall(PERSONA, "warm up", 10, mode=mode)
    samples = []
    for _ in range(queries):
        query = rng.choice(QUERIES) + f" {rng.randrange(1000)}"  # defeat the embedding cache
        began = time.perf_counter()
        await recall.recall(PERSONA, query, 10, mode=mode)
        samples.append((time.perf_counter() - began) * 1000)
    return samples


async def write_to_searchable(synapse: Synapse, garden: PersonaGarden, writes: int, rate: float) -> list[float]:
    relay = synapse.relay(RelayConfig(batch_size=256, idle_poll_s=0.005, poll_interval_s=0.5))
    runner = asyncio.create_task(relay.run())
    collection = synapse.state.active.collection
    samples: list[float] = []

    async def one(i: int) -> None:
        entry = garden.new_entry(f"steady write {i} {uuid.uuid4().hex[:6]}", "INSIGHT")
        began = time.perf_counter()
        await synapse.store.insert([entry])
        relay.wake()  # the in-process wake-up (PostgreSQL's NOTIFY would wake a relay in another process)
        while entry.id not in await synapse.index.retrieve(collection, [entry.id]):  # noqa: ASYNC110
            await asyncio.sleep(0.0005)
        samples.append((time.perf_counter() - began) * 1000)

    tasks = []
    for i in range(writes):
        tasks.append(asyncio.create_task(one(i)))
        await asyncio.sleep(1.0 / rate)
    await asyncio.gather(*tasks)
    relay.stop()
    await runner
    return samples


async def run_case(anchor: str, size: int, args: argparse.Namespace, home: Path) -> dict[str, Any]:
    schema = f"kgents_bench_{uuid.uuid4().hex[:8]}"
    settings = Settings(
        home=home,
        persona=PERSONA,
        postgres_url=args.postgres_url if anchor == "postgres" else None,
        postgres_schema=schema,
    )
    index = None
    if args.index == "qdrant-memory":
        from kgents.resonance.server import QdrantServerIndex

        index = QdrantServerIndex.in_memory()
    synapse = await open_synapse(settings, index=index)
    rng = random.Random(size)
    try:
        garden = PersonaGarden(synapse.store, PERSONA)
        rate = embedder_rate(synapse)
        plant_s = await plant(garden, size, rng)
        relay = synapse.relay(RelayConfig(batch_size=args.batch))
        began = time.perf_counter()
        drained = await relay.drain(timeout_s=3_600)
        relay_s = time.perf_counter() - began
        report = await synapse.coherency()
        optimize = getattr(synapse.index, "optimize", None)
        if args.build and optimize is not None:  # search the HNSW graph, not the plain segments before it is built
            await optimize(synapse.state.active.collection)
        searches = await recall_latencies(synapse, args.queries, rng, RecallMode.DENSE)
        lexical = await recall_latencies(synapse, args.queries, rng, RecallMode.LEXICAL)
        hybrid = await recall_latencies(synapse, args.queries, rng, RecallMode.HYBRID)
        writes = await write_to_searchable(synapse, garden, args.writes, args.rate)
        return {
            "case": f"{anchor} + {synapse.index.backend}, {size:,} entries",
            "embedder": f"{rate:,.0f} sentences/s ({synapse.state.active.embedder})",
            "plant": f"{size / plant_s:,.0f} entries/s",
            "relay": f"{drained / relay_s:,.0f} events/s ({drained:,} in {relay_s:.1f} s), coherency "
            f"{report.coherency_with_truth:.4f}",
            "search": ms(searches) + f" (mean {statistics.fmean(searches):.2f} ms)",
            "recall lexical": ms(lexical),
            "recall hybrid": ms(hybrid) + f" (mean {statistics.fmean(hybrid):.2f} ms)",
            "write→searchable": ms(writes) + f" at {args.rate:g} writes/s",
        }
    finally:
        await synapse.close()
        if anchor == "postgres":
            await drop_schema(args.postgres_url, schema)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--anchors", default="embedded,postgres")
    parser.add_argument("--postgres-url", default="postgresql://127.0.0.1:5432/test")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0, help="steady writes per second")
    parser.add_argument(
        "--index",
        choices=["auto", "qdrant-memory"],
        default="auto",
        help="auto: edge (or KGENTS_QDRANT_URL); qdrant-memory: the server adapter on qdrant-client's local mode",
    )
    parser.add_argument("--batch", type=int, default=512, help="relay batch size for the throughput run")
    parser.add_argument(
        "--build",
        action="store_true",
        help="embedded index: build the HNSW graph before searching (else a large collection is searched while its"
        " background build runs, or before it)",
    )
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        for anchor in args.anchors.split(","):
            with tempfile.TemporaryDirectory(prefix="kgents-bench-") as tmp:
                result = await run_case(anchor, size, args, Path(tmp) / "home")
            print(result["case"])
            for key, value in result.items():
                if key != "case":
                    print(f"  {key:<17} {value}")
            print(flush=True)


if __name__ == "__main__":
    asyncio.run(main())

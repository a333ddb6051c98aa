"""Vector index speed: upsert rate and filtered search p50/p95 for both adapters, at 10k and 100k points.

Run: `.venv/bin/python bench/vector_index.py [--sizes 10000 100000]`. Edge is measured with exact search (as
written) and again after the background HNSW build, whose wall time is printed together with the worst search
latency seen while it ran. The server adapter runs in qdrant-client's local mode here (brute force, no
server), so its figures say nothing about a real Qdrant server. Ratios compare with edge exact search.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from kgents.garden.filters import EntryFilter
from kgents.resonance.edge import EdgeIndex
from kgents.resonance.protocols import IndexPoint, PointPayload, VectorIndex
from kgents.resonance.server import QdrantServerIndex
from kgents.stats import percentile

DIM = 256
PERSONAS = ("kent", "eve", "ada", "bob")


def points(n: int, seed: int = 1) -> list[IndexPoint]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [
        IndexPoint(
            uuid.uuid4(),
            v,
            PointPayload(PERSONAS[i % 4], "PATTERN", ("SEED", "TREE")[i % 2], (i % 10) / 10, (), 1, "h", "e"),
        )
        for i, v in enumerate(vectors)
    ]


async def search_latencies(index: VectorIndex, queries: np.ndarray) -> list[float]:
    flt = EntryFilter(lifecycles=("TREE",), min_confidence=0.2)
    out = []
    for q in queries:
        t = time.perf_counter()
        await index.search("bench", q, "kent", flt, limit=10)
        out.append((time.perf_counter() - t) * 1000)
    return out


async def run(name: str, index: VectorIndex, data: list[IndexPoint], queries: np.ndarray) -> dict[str, float]:
    await index.ensure_collection("bench", "e", DIM)
    t = time.perf_counter()
    for i in range(0, len(data), 1000):
        await index.upsert("bench", data[i : i + 1000])
    result = {"upsert_per_s": len(data) / (time.perf_counter() - t)}
    lat = await search_latencies(index, queries)
    result |= {"p50": statistics.median(lat), "p95": percentile(lat, 0.95) or 0.0}
    if isinstance(index, EdgeIndex):
        build = asyncio.create_task(index.optimize("bench"))
        t, during = time.perf_counter(), []
        while not build.done():
            during += await search_latencies(index, queries[:5])
        await build
        result |= {
            "build_s": time.perf_counter() - t,
            "p95_during_build": (percentile(during, 0.95) or 0.0) if during else 0.0,
        }
        lat = await search_latencies(index, queries)
        result |= {"hnsw_p50": statistics.median(lat), "hnsw_p95": percentile(lat, 0.95) or 0.0}
    await index.close()
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    for size in args.sizes:
        data = points(size)
        queries = np.stack([np.asarray(p.vector) for p in points(args.queries, seed=2)])
        with tempfile.TemporaryDirectory() as tmp:
            edge = await run("edge", EdgeIndex.open(Path(tmp), auto_build_after=None), data, queries)
        local = await run("qdrant-local", QdrantServerIndex.in_memory(), data, queries)
        print(f"--- {size:,} points, {DIM}-d, filtered search (persona + lifecycle + confidence), limit 10")
        print(
            f"edge exact      upsert {edge['upsert_per_s']:>9,.0f}/s  search p50 {edge['p50']:6.2f} ms"
            f"  p95 {edge['p95']:6.2f} ms  1.00x"
        )
        print(
            f"edge HNSW       build {edge['build_s']:6.1f} s in a child (search p95 meanwhile"
            f" {edge['p95_during_build']:.1f} ms)  search p50 {edge['hnsw_p50']:6.2f} ms"
            f"  p95 {edge['hnsw_p95']:6.2f} ms  {edge['p50'] / edge['hnsw_p50']:.2f}x faster"
        )
        print(
            f"qdrant local    upsert {local['upsert_per_s']:>9,.0f}/s  search p50 {local['p50']:6.2f} ms"
            f"  p95 {local['p95']:6.2f} ms  {local['p50'] / edge['p50']:.2f}x edge exact"
        )


if __name__ == "__main__":
    asyncio.run(main())

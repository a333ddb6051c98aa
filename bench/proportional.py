"""Work proportional to the request (issue 17 item 4), on the embedded index: forgetting one small persona beside a
big one, and the event loop's lag while searches run.

Run: `.venv/bin/python bench/proportional.py [--big 100000] [--small 100] [--searches 200] [--build]
[--export 0]`.

- forget: the small persona's points deleted as before (a scroll of every point of the collection, then a delete
  by ids) and as now (`delete_persona`: a count and a delete by the persona filter), each round on the same
  collection with the small persona written back in between; p50/p95 and the ratio.
- loop lag: a ticker asks the loop for a 1 ms sleep again and again and records how late it wakes, while hybrid
  searches (dense + lexical, the big persona) run: as before (the engine queried on the event loop) and as now
  (`search_signals`: each engine query on a worker thread). The engine holds the GIL while it queries, so the
  loop still waits while one query runs: the lag is bounded by one engine call, not by the whole search.
  `--build` builds the HNSW graph first (otherwise the search is exact over plain segments: the worst case).
- export (`--export N`, on the SQLite anchor): reading every entry of a persona of N (beside another of N) in
  pages of 10,000, as before (planted order, OFFSET) and as now (`read_bundle`'s keyset on observed, id).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np

from kgents.config import Settings
from kgents.garden.filters import EntryFilter
from kgents.garden.records import MAX_QUERY_LIMIT, GardenQuery, OrderBy
from kgents.garden.service import PersonaGarden
from kgents.garden.store import open_store
from kgents.memory.portable import read_bundle
from kgents.resonance.edge import EdgeIndex
from kgents.resonance.edge_lexical import ranked, signal_requests
from kgents.resonance.edge_query import search_filter
from kgents.resonance.lexical import document_terms, query_terms
from kgents.resonance.protocols import IndexPoint, PointPayload
from kgents.soul.snapshot import snapshots_on
from kgents.stats import percentile

DIM = 256
COLLECTION = "bench"
WORDS = [f"w{i}" for i in range(2_000)]
TICK_S = 0.001


def make_points(n: int, persona: str, seed: int) -> list[IndexPoint]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    words = rng.integers(0, len(WORDS), size=(n, 8))
    out = []
    for i in range(n):
        text = " ".join(WORDS[w] for w in words[i])
        payload = PointPayload(persona, "PATTERN", "TREE", 0.5, (), 1, "h", "e")
        out.append(IndexPoint(uuid.uuid4(), vectors[i], payload, document_terms(text)))
    return out


async def fill(index: EdgeIndex, points: list[IndexPoint]) -> None:
    for i in range(0, len(points), 2_000):
        await index.upsert(COLLECTION, points[i : i + 2_000])


async def forget_by_scan(index: EdgeIndex, persona: str) -> int:
    """The forget of before: every point's (persona, version) scrolled, then this persona's deleted by id."""
    ids = [p for p, (owner, _v) in (await index.versions(COLLECTION)).items() if owner == persona]
    await index.delete(COLLECTION, ids)
    return len(ids)


async def forget_by_filter(index: EdgeIndex, persona: str) -> int:
    """The forget of now: a count and a delete by the persona filter."""
    return await index.delete_persona(COLLECTION, persona)


def pct(values: list[float], q: float) -> float:
    return round(percentile(values, q) or 0.0, 3)


def summary(times_ms: list[float]) -> dict[str, float]:
    return {"p50_ms": pct(times_ms, 0.5), "p95_ms": pct(times_ms, 0.95)}


async def with_lag(work: Callable[[], Awaitable[Any]]) -> tuple[list[float], list[float]]:
    """Run `work` once per call of the returned loop; the ticker's lags (ms) and each work's time (ms)."""
    lags: list[float] = []
    running = True

    async def ticker() -> None:
        while running:
            start = time.perf_counter()
            await asyncio.sleep(TICK_S)
            lags.append((time.perf_counter() - start - TICK_S) * 1000)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    try:
        times = await work()
    finally:
        running = False
        await task
    return lags, times


async def forget_rounds(index: EdgeIndex, small: list[IndexPoint], rounds: int) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, forget in (("scan (before)", forget_by_scan), ("filter (now)", forget_by_filter)):
        times: list[float] = []
        for _ in range(rounds):
            await fill(index, small)
            start = time.perf_counter()
            removed = await forget(index, "small")
            times.append((time.perf_counter() - start) * 1000)
            assert removed == len(small), (name, removed)
        found[name] = summary(times)
    found["ratio"] = round(found["scan (before)"]["p50_ms"] / max(found["filter (now)"]["p50_ms"], 1e-9), 1)
    return found


async def lag_rounds(index: EdgeIndex, searches: int) -> dict[str, Any]:
    col = await index._shards.get(COLLECTION)
    rng = np.random.default_rng(9)
    queries = rng.standard_normal((searches, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    texts = [" ".join(WORDS[w] for w in rng.integers(0, len(WORDS), 3)) for _ in range(searches)]
    flt = EntryFilter()

    async def on_loop() -> list[float]:
        times = []
        for q, text in zip(queries, texts, strict=True):
            start = time.perf_counter()
            terms = query_terms(text)
            requests = signal_requests(q.tolist(), terms, search_filter("big", flt), 10)
            ranked([col.shard.query(r) for r in requests], True, terms)
            times.append((time.perf_counter() - start) * 1000)
            await asyncio.sleep(0)
        return times

    async def off_loop() -> list[float]:
        times = []
        for q, text in zip(queries, texts, strict=True):
            start = time.perf_counter()
            await index.search_signals(COLLECTION, q, query_terms(text), "big", flt, 10)
            times.append((time.perf_counter() - start) * 1000)
            await asyncio.sleep(0)
        return times

    found: dict[str, Any] = {}
    for name, work in (("on the loop (before)", on_loop), ("off the loop (now)", off_loop)):
        lags, times = await with_lag(work)
        found[name] = {
            "search": summary(times),
            "lag_p50_ms": pct(lags, 0.5),
            "lag_p99_ms": pct(lags, 0.99),
            "lag_max_ms": round(max(lags), 3),
        }
    return found


async def read_by_offset(garden: PersonaGarden) -> int:
    """The export's read of before: pages in planted order, each skipping the ones before it."""
    read, offset = 0, 0
    while True:
        page = await garden.query(
            None, GardenQuery(order_by=OrderBy.PLANTED, descending=False, limit=MAX_QUERY_LIMIT, offset=offset)
        )
        read += len(page)
        offset += len(page)
        if len(page) < MAX_QUERY_LIMIT:
            return read


async def export_rounds(entries: int, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        store = await open_store(Settings(home=Path(tmp) / "home"))
        try:
            for persona in ("other", "big"):
                garden = PersonaGarden(store, persona)
                for start in range(0, entries, 5_000):
                    batch = range(start, min(entries, start + 5_000))
                    await garden.plant_many([garden.new_entry(f"fact {i} of {persona}", "INSIGHT") for i in batch])
            garden = PersonaGarden(store, "big")

            async def by_offset() -> int:
                return await read_by_offset(garden)

            async def by_key() -> int:
                return len((await read_bundle(store, snapshots_on(store.anchor), "big")).entries)

            found: dict[str, Any] = {"entries": entries}
            readers: list[tuple[str, Callable[[], Awaitable[int]]]] = [
                ("offset (before)", by_offset),
                ("key (now)", by_key),
            ]
            for name, read in readers:
                times = []
                for _ in range(rounds):
                    start_s = time.perf_counter()
                    assert await read() == entries
                    times.append((time.perf_counter() - start_s) * 1000)
                found[name] = summary(times)
            found["ratio"] = round(found["offset (before)"]["p50_ms"] / max(found["key (now)"]["p50_ms"], 1e-9), 2)
            return found
        finally:
            await store.close()


async def main(big: int, small: int, searches: int, rounds: int, build: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        index = EdgeIndex.open(Path(tmp) / "index", auto_build_after=None)
        try:
            await index.ensure_collection(COLLECTION, "e", DIM)
            start = time.perf_counter()
            await fill(index, make_points(big, "big", 1))
            filled_s = time.perf_counter() - start
            if build:
                await index.optimize(COLLECTION)
            info = (await index.collections())[0]
            result: dict[str, Any] = {
                "big": big,
                "small": small,
                "fill_s": round(filled_s, 1),
                "indexed_vectors": info.extra.get("indexed_vectors"),
                "forget_small": await forget_rounds(index, make_points(small, "small", 2), rounds),
                "loop_lag_during_hybrid_search": await lag_rounds(index, searches),
            }
        finally:
            await index.close()
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--build", action="store_true", help="build the HNSW graph before measuring")
    parser.add_argument("--export", type=int, default=0, help="entries of the exported persona (0: no export)")
    args = parser.parse_args()
    found = asyncio.run(main(args.big, args.small, args.searches, args.rounds, args.build))
    if args.export:
        found["export"] = asyncio.run(export_rounds(args.export, min(args.rounds, 3)))
    print(json.dumps(found, indent=2))

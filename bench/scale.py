"""The garden at scale through the Python face, on the embedded default (SQLite + the embedded index, the default
embedder; `--postgres URL`: the anchor on PostgreSQL, in a throwaway schema): issue 17's figures in one run.

- `remember_many` (batches of `--batch`) throughput per slice of the garden, the first slice being the empty
  garden's rate (after one untimed batch); the HNSW builds that started by themselves meanwhile (they run in a
  child process);
- the graph's build once filled (`build_index(now=True)`: what is still outside the graph), and its state;
- recall p50/p95, hybrid and dense (limit 10, hydrated from the anchor, every query new so embedded), beside the
  baseline: a bare Qdrant Edge query on the same collection and filter, the query embedded by the same model,
  in turn with them so the machine's load weighs on all alike; the ratios to it are issue 17's targets; beside
  it, what the hybrid asks of the engine (both signals, each `POOL` deep);
- RSS of this process, bytes per entry on disk (index and anchor), the time to open the memory again on the full
  garden (and its first recall), and one `/metrics` scrape of a `kgents serve` on that home (first and p50 just
  after it starts, and p50 once its relay has published its first figure).

    python bench/scale.py [--entries 100000] [--slices 10] [--batch 1000] [--queries 200] [--dir D]
        [--postgres URL] [--no-server] [--no-int8] [--no-auto-build] [--json]

Targets (issue 17): recall dense <= 1.3x the raw engine, hybrid <= 2x; remember_many sustained >= 80 % of its
empty-garden rate; one scrape <= 20 ms at 1M. Heavy: run it under `nice -n 10` on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import qdrant_edge as qe

import memory as memory_bench  # bench/memory.py
from kgents.config import Settings
from kgents.garden.filters import EntryFilter
from kgents.memory.api import MemoryItem
from kgents.memory.http_client import HttpClient
from kgents.memory.local import AsyncMemory
from kgents.resonance.edge import EdgeIndex
from kgents.resonance.edge_lexical import signal_requests
from kgents.resonance.edge_query import search_filter
from kgents.resonance.edge_shard import DEFAULT_AUTO_BUILD_AFTER
from kgents.resonance.factory import index_root
from kgents.resonance.lexical import query_terms
from kgents.stats import percentile
from kgents.synapse.recall import POOL
from resonance import OBJECTS, QUALIFIERS, QUERIES, SUBJECTS, VERBS

PERSONA = "scale"
LIMIT = 10


def sentence(rng: random.Random, i: int) -> str:
    return f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(QUALIFIERS)} note {i}"


def p(values: list[float], q: float) -> float:
    found = percentile(values, q)
    return round(found, 3) if found is not None else float("nan")


def rss_mb() -> dict[str, float]:
    """This process's resident memory: all, anonymous (the heap) and file-backed (the index's mapped files)."""
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            found[key] = round(int(value.split()[0]) / 1024, 1)
    return found


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def anchor_size(home: Path) -> int:
    return sum(f.stat().st_size for f in home.glob("*.db*"))


async def postgres_size(url: str, schema: str) -> int:
    """The schema's tables with their indexes and TOAST."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        size = await conn.fetchval(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'",
            schema,
        )
    finally:
        await conn.close()
    return int(size)


def machine() -> dict[str, Any]:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    return {
        "cpus": os.cpu_count(),
        "load_at_start": [round(x, 2) for x in os.getloadavg()],
        "commit": commit.stdout.strip() or None,
        "python": sys.version.split()[0],
    }


async def fill(memory: AsyncMemory, entries: int, slices: int, batch: int) -> dict[str, Any]:
    """remember_many until `entries`: the rate of each slice (remember_many's own time), and the builds seen."""
    rng = random.Random(17)
    per_slice = max(batch, entries // slices)
    rates: list[float] = []
    builds: list[dict[str, Any]] = []
    warm = min(batch, entries)  # one batch first, untimed: the embedder's and the connections' first use
    await memory.remember_many([MemoryItem(sentence(rng, j)) for j in range(warm)])
    spent, in_slice, done, last = 0.0, 0, warm, None
    while done < entries:
        items = [MemoryItem(sentence(rng, done + j)) for j in range(min(batch, entries - done))]
        began = time.perf_counter()
        await memory.remember_many(items)
        spent += time.perf_counter() - began
        done, in_slice = done + len(items), in_slice + len(items)
        graph = await memory.stack.graph()  # the engine's counters: microseconds
        if graph is not None and graph.last_build_s is not None and graph.last_build_s != last:  # one swapped in
            last = graph.last_build_s
            builds.append({"swapped_near": done, "seconds": last, "writes_waited_s": graph.last_pause_s})
        if in_slice >= per_slice or done == entries:
            rates.append(round(in_slice / spent))
            print(f"{done:,} entries: {rates[-1]:,} /s", file=sys.stderr, flush=True)  # a long run's progress
            spent, in_slice = 0.0, 0
    return {"slice": per_slice, "rates_per_s": rates, "builds_while_writing": builds}


async def alternate(rounds: int, *ops: Callable[[int], Awaitable[object]]) -> list[list[float]]:
    """bench/memory.py's, in ms, after 10 rounds of warming up."""
    for i in range(10):
        for op in ops:
            await op(-1 - i)
    return await memory_bench.alternate(rounds, *ops)


async def recall_figures(memory: AsyncMemory, rounds: int) -> dict[str, Any]:
    stack = memory.stack
    collection = stack.state.active.collection
    embedder: Any = stack.embedders(stack.state.active.embedder)
    raw_embedder = getattr(embedder, "inner", embedder)
    shard = (await stack.index._shards.get(collection)).shard  # type: ignore[attr-defined]
    where = search_filter(PERSONA, EntryFilter())

    def query(i: int, salt: str) -> str:
        return f"{QUERIES[i % len(QUERIES)]} {salt}{i}"  # new each time: every query is embedded

    async def raw(i: int) -> None:
        vector = raw_embedder.embed([query(i, "r")])[0]
        request = qe.QueryRequest(
            limit=LIMIT, query=qe.Query.Nearest(vector.tolist()), filter=where, with_payload=False
        )
        shard.query(request)

    async def raw_signals(i: int) -> None:
        """What the hybrid asks the engine: both signals, each POOL deep (the query embedded and tokenised)."""
        text = query(i, "s")
        vector = raw_embedder.embed([text])[0].tolist()
        for request in signal_requests(vector, query_terms(text), where, POOL):
            shard.query(request)

    async def dense(i: int) -> None:
        await memory.recall(query(i, "d"), limit=LIMIT, mode="dense")

    async def hybrid(i: int) -> None:
        await memory.recall(query(i, "h"), limit=LIMIT)

    base, signals, d, h = await alternate(rounds, raw, raw_signals, dense, hybrid)
    raw50 = p(base, 0.5)
    return {
        "raw_ms": {"p50": raw50, "p95": p(base, 0.95)},
        "raw_signals_ms": {"p50": p(signals, 0.5), "p95": p(signals, 0.95), "pool": POOL},
        "dense_ms": {"p50": p(d, 0.5), "p95": p(d, 0.95), "ratio_p50": round(p(d, 0.5) / raw50, 2)},
        "hybrid_ms": {"p50": p(h, 0.5), "p95": p(h, 0.95), "ratio_p50": round(p(h, 0.5) / raw50, 2)},
    }


async def reopen(settings: Settings) -> dict[str, float]:
    began = time.perf_counter()
    memory = await AsyncMemory.open(settings, PERSONA)
    opened = time.perf_counter()
    try:
        await memory.recall("quick feedback on Mondays", limit=LIMIT)
        first = time.perf_counter()
    finally:
        await memory.close()
    return {"open_s": round(opened - began, 3), "first_recall_s": round(first - opened, 3)}


async def timed_scrape(client: HttpClient) -> float:
    t0 = time.perf_counter()
    answer = await client.request("GET", "/metrics")
    assert answer.status == 200, answer.status
    return (time.perf_counter() - t0) * 1000


async def settled(client: HttpClient, started: float, within_s: float = 120.0) -> float | None:
    """Seconds from the server's start (`started`, perf_counter) until its relay has published a coherency
    figure of its own (one younger than the server): until then a scrape shares the CPU with that first
    measurement. None if not within `within_s`."""
    while (now := time.perf_counter()) - started < within_s:
        answer = await client.request("GET", "/v1/health")
        age = json.loads(answer.body)["parts"]["resonance"]["figures"].get("age_s")
        if age is not None and age < now - started:
            return round(now - started, 2)
        await asyncio.sleep(0.2)
    return None


async def scrape(settings: Settings, rounds: int = 5) -> dict[str, Any]:
    """Start `kgents serve` on the home, then GET /metrics `rounds` times (the first, and the p50 of the rest),
    and `rounds` times again once its relay has published its first figure (the steady state's p50)."""
    from server import start_server  # bench/server.py

    began = time.perf_counter()
    proc, info = start_server(settings)
    try:
        client = HttpClient(info.url, {"Authorization": f"Bearer {info.token}"}, timeout_s=600)
        ready = await client.request("GET", "/readyz")
        started = time.perf_counter() - began
        samples = [await timed_scrape(client) for _ in range(rounds)]
        measured = await settled(client, began)
        steady = [await timed_scrape(client) for _ in range(rounds)]
        await client.aclose()
        return {
            "server_ready_s": round(started, 3),
            "readyz": ready.status,
            "first_ms": round(samples[0], 1),
            "p50_ms": p(samples[1:], 0.5),
            "relay_measured_at_s": measured,
            "steady_p50_ms": p(steady, 0.5),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=120)


async def run(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    settings = Settings(home=home, persona=PERSONA)
    if args.postgres:
        settings = Settings(
            home=home, persona=PERSONA, postgres_url=args.postgres, postgres_schema=f"scale_{os.getpid()}"
        )
    out: dict[str, Any] = {"entries": args.entries, "anchor": "postgres" if args.postgres else "sqlite", **machine()}
    index = None
    if args.no_int8 or args.no_auto_build:  # the default index but for these
        auto = None if args.no_auto_build else DEFAULT_AUTO_BUILD_AFTER
        index = EdgeIndex.open(index_root(settings), auto_build_after=auto, int8=not args.no_int8)
    out["int8"], out["auto_build"] = not args.no_int8, not args.no_auto_build
    memory = await AsyncMemory.open(settings, PERSONA, index=index)
    try:
        out["embedder"] = memory.stack.state.active.embedder
        out["remember_many"] = await fill(memory, args.entries, args.slices, args.batch)
        rates = out["remember_many"]["rates_per_s"]
        out["remember_many"]["sustained_vs_empty"] = round(min(rates) / rates[0], 3)
        out["remember_many"]["last_vs_empty"] = round(rates[-1] / rates[0], 3)
        out["rss_after_fill_mb"] = rss_mb()
        out["graph_before_build"] = (await memory.status())["index_graph"]
        began = time.perf_counter()
        out["graph"] = await memory.build_index(now=True)
        out["build_s"] = round(time.perf_counter() - began, 2)
        out["recall"] = await recall_figures(memory, args.queries)
        out["rss_mb"] = rss_mb()
        out["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    finally:
        await memory.close()
    index_bytes = folder_bytes(home / "index")
    anchor_bytes = await postgres_size(args.postgres, settings.postgres_schema) if args.postgres else anchor_size(home)
    out["bytes_per_entry"] = {
        "index": round(index_bytes / args.entries),
        "anchor": round(anchor_bytes / args.entries),
    }
    out["reopen"] = await reopen(settings)
    out["metrics_scrape"] = None if args.no_server or args.postgres else await scrape(settings)
    out["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.postgres:
        from kgents.anchor.postgres import drop_schema

        await drop_schema(args.postgres, settings.postgres_schema)
    return out


def report(out: dict[str, Any]) -> None:
    rm, rc = out["remember_many"], out["recall"]
    print(f"kgents at scale: {out['entries']:,} entries, anchor {out['anchor']}, embedder {out['embedder']}", end="")
    print(f", int8 {out['int8']}, builds while writing {out['auto_build']}")
    print(f"machine: {out['cpus']} cpus, load {out['load_at_start']} -> {out['load_at_end']}, commit {out['commit']}")
    print(f"remember_many per {rm['slice']:,}: {', '.join(f'{r:,}' for r in rm['rates_per_s'])} /s")
    sustained, last = rm["sustained_vs_empty"], rm["last_vs_empty"]
    print(f"  sustained {sustained:.0%} of the empty garden's rate (last slice {last:.0%})")
    for b in rm["builds_while_writing"]:
        print(
            f"  a build swapped in near {b['swapped_near']:,}: {b['seconds']} s, writes waited {b['writes_waited_s']} s"
        )
    print(f"graph before the last build: {out['graph_before_build']}")
    print(f"build_index(now) {out['build_s']} s -> {out['graph']}")
    print(f"recall raw engine (baseline) p50 {rc['raw_ms']['p50']} ms, p95 {rc['raw_ms']['p95']} ms")
    rs = rc["raw_signals_ms"]
    print(
        f"raw engine, both signals {rs['pool']} deep (the hybrid's engine work) p50 {rs['p50']} ms, p95 {rs['p95']} ms"
    )
    for mode in ("dense", "hybrid"):
        r = rc[f"{mode}_ms"]
        print(f"recall {mode:<6} p50 {r['p50']} ms, p95 {r['p95']} ms: {r['ratio_p50']}x the raw engine")
    print(f"RSS {out['rss_mb']} MB (max {out['max_rss_mb']} MB); bytes per entry {out['bytes_per_entry']}")
    print(f"RSS after filling, before the last build: {out['rss_after_fill_mb']} MB")
    print(f"open again {out['reopen']}; /metrics {out['metrics_scrape']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--slices", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--dir", default=None, help="where to make the temporary home (default: the system's)")
    parser.add_argument("--postgres", default=None, help="the anchor on this PostgreSQL (a throwaway schema)")
    parser.add_argument("--no-server", action="store_true", help="skip the /metrics scrape of a kgents serve")
    parser.add_argument("--no-int8", action="store_true", help="float vectors only (the layout before issue 17)")
    parser.add_argument("--no-auto-build", action="store_true", help="no build while writing (one at the end)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        (Path(tmp) / "home").mkdir(mode=0o700)
        out = asyncio.run(run(args, Path(tmp) / "home"))
    print(json.dumps(out)) if args.json else report(out)


if __name__ == "__main__":
    main()

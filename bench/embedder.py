"""Embedder speed: load time, batch throughput, single-sentence latency (p50/p95), and the cache's effect.

Run: `.venv/bin/python bench/embedder.py` (`--quick` for a smoke run). The quality embedder (`minilm`) is
measured too when the `quality` extra is installed. Ratios compare with the default embedder, same process.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from kgents.resonance.embedders import DEFAULT_EMBEDDER, EMBEDDERS, CachedEmbedder
from kgents.resonance.protocols import Embedder
from kgents.stats import percentile

_VOCABULARY = """
I prefer minimal code keep things small simple tests fast docs clear meetings short agenda notes weather sunny
rain coffee morning evening music jazz focus travel train light pack sleep early late review merge deploy
rollback persona memory garden seed tree flower compost confidence evidence pattern value insight
"""
WORDS = _VOCABULARY.split()


def sentences(n: int, seed: int = 7) -> list[str]:
    """Short sentences (4-12 words), distinct, deterministic."""
    rng = random.Random(seed)
    return [f"{' '.join(rng.choices(WORDS, k=rng.randint(4, 12)))} {i}" for i in range(n)]


def cold_load_seconds(name: str) -> float:
    """Import + load + first embed in a fresh interpreter: what a new process pays."""
    script = (
        "import time; t = time.perf_counter()\n"
        "from kgents.resonance.embedders import open_embedder\n"
        f"open_embedder({name!r}).embed(['warm up'])\n"
        "print(time.perf_counter() - t)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def measure(name: str, factory: Callable[[], Embedder], n_batch: int, n_single: int, batch: int) -> dict[str, float]:
    started = time.perf_counter()
    model = factory()
    load_s = time.perf_counter() - started
    model.embed(["warm up"])
    texts = sentences(n_batch)
    started = time.perf_counter()
    for i in range(0, len(texts), batch):
        model.embed(texts[i : i + batch])
    batch_rate = len(texts) / (time.perf_counter() - started)
    singles = []
    for text in texts[:n_single]:
        t = time.perf_counter()
        model.embed([text])
        singles.append((time.perf_counter() - t) * 1000)
    cached = CachedEmbedder(model, capacity=n_batch)
    cached.embed(texts)
    started = time.perf_counter()
    cached.embed(texts)
    cached_rate = len(texts) / (time.perf_counter() - started)
    return {
        "load_s": load_s,
        "cold_s": cold_load_seconds(name),
        "batch_per_s": batch_rate,
        "single_p50_ms": statistics.median(singles),
        "single_p95_ms": percentile(singles, 0.95),
        "cached_per_s": cached_rate,
        "dimension": float(model.dimension),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--batch", type=int, default=512)
    args = parser.parse_args()
    n_batch, n_single = (2_000, 200) if args.quick else (50_000, 2_000)

    results = {DEFAULT_EMBEDDER: measure(DEFAULT_EMBEDDER, EMBEDDERS[DEFAULT_EMBEDDER], n_batch, n_single, args.batch)}
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        print("minilm (quality extra) not installed: skipped")
    else:
        results["minilm"] = measure("minilm", EMBEDDERS["minilm"], n_batch // 10, n_single // 10, 64)

    base = results[DEFAULT_EMBEDDER]["batch_per_s"]
    header = f"{'embedder':<20}{'dim':>5}{'load s':>8}{'cold s':>8}{'batch/s':>10}{'p50 ms':>8}{'p95 ms':>8}"
    print(header + f"{'cached/s':>11}{'vs default':>11}")
    for name, r in results.items():
        print(
            f"{name:<20}{r['dimension']:>5.0f}{r['load_s']:>8.3f}{r['cold_s']:>8.2f}{r['batch_per_s']:>10,.0f}"
            f"{r['single_p50_ms']:>8.3f}{r['single_p95_ms']:>8.3f}{r['cached_per_s']:>11,.0f}"
            f"{r['batch_per_s'] / base:>10.3f}x"
        )


if __name__ == "__main__":
    main()

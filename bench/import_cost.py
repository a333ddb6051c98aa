"""What a process pays to import a face, cold (issue 19: a client of a server imports no driver and no numpy).

    python bench/import_cost.py [--rounds 15]

Each round starts a fresh interpreter per case, in turn (so a busy machine weighs on all alike), and times
`from kgents import X` inside it; the baseline is importing httpx, a plain HTTP client. It also
lists which heavy libraries each case loaded.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from kgents.stats import percentile

CASES = {
    "httpx (a plain HTTP client)": "import httpx",
    "RemoteMemory (thin client)": "from kgents import RemoteMemory",
    "AsyncMemory (in process)": "from kgents import AsyncMemory",
    "Memory (sync face)": "from kgents import Memory",
}
HEAVY = ("asyncpg", "numpy", "qdrant_edge", "qdrant_client", "redis", "onnxruntime", "starlette", "uvicorn", "httpx")
PROBE = """
import json, sys, time
t = time.perf_counter()
{line}
took = time.perf_counter() - t
print(json.dumps({{"ms": took * 1000, "heavy": sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r}))}}))
"""


def once(line: str) -> dict[str, object]:
    code = PROBE.format(line=line, heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    found: dict[str, object] = json.loads(done.stdout)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in CASES}
    heavy: dict[str, list[str]] = {}
    for _ in range(args.rounds):
        for name, line in CASES.items():
            found = once(line)
            times[name].append(float(str(found["ms"])))
            heavy[name] = [str(m) for m in found["heavy"]]  # type: ignore[attr-defined]
    thin = percentile(times["RemoteMemory (thin client)"], 0.5) or 0.0
    print(f"{'case':<30} {'p50 ms':>8} {'p95 ms':>8} {'÷ thin':>7}  heavy libraries loaded")
    for name, samples in times.items():
        p50, p95 = percentile(samples, 0.5) or 0.0, percentile(samples, 0.95) or 0.0
        ratio = p50 / thin if thin else float("nan")
        print(f"{name:<30} {p50:8.1f} {p95:8.1f} {ratio:7.2f}  {', '.join(heavy[name]) or '-'}")


if __name__ == "__main__":
    main()

"""The cost of going through `kgents serve`: recall and remember latency in this process against through a real
server process on loopback (RemoteMemory over HTTP), on the embedded default; p50 / p95, and the p50 the server
adds. The floor of the HTTP path is shown too: GET /livez (no memory work) over the same keep-alive client.

The two sides cannot run at once (on the embedded default the server owns the index), so they alternate in
`--blocks` blocks (in-process, then through a fresh server, and again), and each side's figures pool its blocks:
a drift of the machine's load over the run then weighs on both sides alike.

    python bench/server.py [--entries 2000] [--rounds 300] [--blocks 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from kgents.config import Settings
from kgents.home.discovery import ServerInfo, home_server, read_server_file
from kgents.memory.api import MemoryAPI, MemoryItem
from kgents.memory.local import AsyncMemory
from kgents.memory.remote import RemoteMemory
from kgents.stats import percentile

console = Console()
QUERIES = ("minimal code", "databases and gardens", "tea in the morning", "how to relay events", "small modules")


async def timed(rounds: int, op: Callable[[int], Awaitable[object]]) -> list[float]:
    for i in range(min(20, rounds)):  # warm up: connections, caches
        await op(i)
    samples = []
    for i in range(rounds):
        start = time.perf_counter()
        await op(i)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


async def measure(memory: MemoryAPI, rounds: int) -> dict[str, list[float]]:
    return {
        "recall": await timed(rounds, lambda i: memory.recall(QUERIES[i % len(QUERIES)], limit=10)),
        "remember": await timed(rounds, lambda i: memory.remember(f"bench note {i} {time.time_ns()}")),
    }


def start_server(settings: Settings) -> tuple[subprocess.Popen[bytes], ServerInfo]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGENTS_")} | {"KGENTS_HOME": str(settings.home)}
    kgents = Path(sys.executable).with_name("kgents")
    proc = subprocess.Popen([str(kgents), "serve", "--port", "0"], env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        data = read_server_file(settings)
        info = home_server(settings) if data is not None and data["pid"] == proc.pid else None
        if info is not None:
            return proc, info
        if proc.poll() is not None:
            raise SystemExit(f"kgents serve exited {proc.returncode}")
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("kgents serve did not start within 60 s")


async def livez(remote: RemoteMemory, rounds: int) -> list[float]:
    client = remote._client  # the same keep-alive connection pool the memory uses

    async def probe(_: int) -> None:
        assert (await client.request("GET", "/livez")).status == 200

    return await timed(rounds, probe)


def q(values: list[float], quantile: float) -> float:
    found = percentile(values, quantile)
    assert found is not None
    return found


def row(name: str, local: list[float] | None, remote: list[float]) -> tuple[str, ...]:
    def p(values: list[float] | None, quantile: float) -> str:
        return "-" if values is None else f"{q(values, quantile):.3f}"

    added = "-" if local is None else f"{q(remote, 0.5) - q(local, 0.5):+.3f}"
    return (name, p(local, 0.5), p(local, 0.95), p(remote, 0.5), p(remote, 0.95), added)


async def main(entries: int, rounds: int, blocks: int) -> None:
    local: dict[str, list[float]] = {"recall": [], "remember": []}
    through: dict[str, list[float]] = {"recall": [], "remember": []}
    floor: list[float] = []
    per_block = max(1, rounds // blocks)
    with tempfile.TemporaryDirectory(prefix="kgents-bench-server-") as tmp:
        settings = Settings(home=Path(tmp) / "home", persona="bench")
        async with AsyncMemory(settings=settings) as memory:
            seed = [MemoryItem(f"seed memory {i} about {QUERIES[i % len(QUERIES)]}") for i in range(entries)]
            for start in range(0, entries, 500):
                await memory.remember_many(seed[start : start + 500])
        for _ in range(blocks):
            async with AsyncMemory(settings=settings) as memory:
                for name, samples in (await measure(memory, per_block)).items():
                    local[name] += samples
            proc, info = start_server(settings)
            try:
                async with RemoteMemory(info, "bench") as remote:
                    for name, samples in (await measure(remote, per_block)).items():
                        through[name] += samples
                    floor += await livez(remote, per_block)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
    title = f"kgents serve on loopback, embedded default, {entries:,} entries, {rounds} rounds in {blocks} blocks (ms)"
    table = Table(title=title)
    for column in ("operation", "in-process p50", "p95", "server p50", "p95", "added p50"):
        table.add_column(column, justify="right")
    table.add_row(*row("recall (limit 10)", local["recall"], through["recall"]))
    table.add_row(*row("remember (searchable)", local["remember"], through["remember"]))
    table.add_row(*row("GET /livez (HTTP floor)", None, floor))
    console.print(table)
    summary = {
        k: {"in_process_p50": round(q(v, 0.5), 3), "server_p50": round(q(through[k], 0.5), 3)} for k, v in local.items()
    }
    console.print(json.dumps(summary), markup=False, soft_wrap=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--blocks", type=int, default=3, help="alternations of in-process and server (default 3)")
    args = parser.parse_args()
    asyncio.run(main(args.entries, args.rounds, args.blocks))

"""The fault campaign of issue 16, items 1 to 6: each fault replayed against real processes, and for each what was
acknowledged, what the anchor holds, what the index holds, coherency, and what a held-open `Memory()` saw.

1. PostgreSQL restarts (fast and immediate, on a private cluster; else the server's own backends terminated on
   the shared one) under a `Memory()` writing and forgetting through `kgents serve`; every write the caller was
   told was not done is checked absent, every acknowledged one present, every one in doubt sent again (same id);
2. `forget` whose server is killed (SIGKILL) after its DELETE committed, through a held-open `Memory()`;
3. an update committed between a remember's insert and its inline claim (PostgreSQL), many times;
4. the home's server killed (SIGKILL) under a `Memory()` that keeps writing and reading, a second server started;
5. a home on a small tmpfs whose disk fills under a writer, then space freed; and a 5 MiB home;
6. 80 slow-loris connections (40 without a token) against `kgents serve`, with its default deadlines.

Claims at the end: 0 writes in doubt that were not reported as such, 0 duplicates after retries, the full-disk
home working again once space is freed, every slow client dropped by its deadline. Exit 1 if one fails.

    python bench/faults.py [--writes 300] [--restarts 4] [--postgres-url postgresql://127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the fault helpers the tests use: tests.private_pg, tests.pg_faults

from bench.faults_kit import Report, Row  # noqa: E402
from bench.faults_scenarios import (  # noqa: E402
    full_disk,
    inline_race,
    killed_server,
    restarts,
    severed_forgets,
    slow_clients,
)
from rich.console import Console  # noqa: E402

console = Console(stderr=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writes", type=int, default=300, help="Writes of the held-open Memory in item 1.")
    parser.add_argument("--restarts", type=int, default=4, help="PostgreSQL restarts in item 1.")
    parser.add_argument(
        "--postgres-url", default=os.environ.get("KGENTS_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
    )
    parser.add_argument("--only", default="123456", help="Which items to run (digits).")
    args = parser.parse_args()
    report = Report()
    with tempfile.TemporaryDirectory(prefix="kgents-faults-") as tmp:
        base = Path(tmp)
        steps = {
            "1": lambda: restarts(report, base / "1", args.postgres_url, args.writes, args.restarts),
            "2": lambda: severed_forgets(report, base / "2", args.postgres_url),
            "3": lambda: asyncio.run(inline_race(report, base / "3", args.postgres_url)),
            "4": lambda: killed_server(report, base / "4"),
            "5": lambda: full_disk(report, base / "5"),
            "6": lambda: slow_clients(report, base / "6"),
        }
        for item, step in steps.items():
            if item in args.only:
                console.print(f"[bold]item {item}[/]", highlight=False)
                step()
    show(report)
    return 0 if report.ok else 1


def show(report: Report) -> None:
    """Plain lines (never wrapped when piped): per item what the caller was told, the anchor, the index, coherency
    and what the held-open Memory saw; then the claims."""
    out = Console(soft_wrap=True, highlight=False)
    out.print("\n[bold]issue 16 fault campaign[/]")
    for row in report.rows:
        out.print(f"\n[bold]item {row.item}[/]  {row.fault}")
        for label, value in zip(Row.COLUMNS[2:], row.cells()[2:], strict=True):
            out.print(f"  {label:<22} {value}", markup=False)
    out.print("\n[bold]claims[/]")
    for claim in report.claims:
        mark = "[green]ok    [/]" if claim.ok else "[red]FAILED[/]"
        out.print(f"  {mark} {claim.what}: {claim.detail}")
    load = os.getloadavg()
    out.print(f"\nload average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


if __name__ == "__main__":
    sys.exit(main())

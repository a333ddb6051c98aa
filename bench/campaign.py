"""A fault campaign against the real triad, to run again whenever the relay, the index or the soul changes.

On a throwaway PostgreSQL schema with the embedded index in a throwaway home:

1. two writer processes plant, nurture, delete and re-plant (same id) entries for `--seconds`;
2. meanwhile the relay (`kgents synapse run`) is killed with SIGKILL `--kills` times and restarted;
3. a second home over the same schema tries to relay and search: it must refuse (exit 78) and steal nothing;
4. a private Redis is stalled (SIGSTOP) while the soul changes mode: every soul command must finish within a few
   seconds, and once Redis is back no reader may see the state from before the last save;
5. after the writers stop, the relay drains, and coherency_with_truth must be exactly 1.0 with no orphan,
   no stale and no missing point.

Prints a table of the claims and exits 1 if any of them failed.

    python bench/campaign.py [--seconds 20] [--kills 3] [--postgres-url postgresql://127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
console = Console(stderr=True)


@dataclass
class Claim:
    what: str
    ok: bool
    detail: str


@dataclass
class Campaign:
    pg_url: str
    schema: str
    home_a: Path
    home_b: Path
    claims: list[Claim] = field(default_factory=list)

    def env(self, home: Path, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KGENTS_")}
        env |= {
            "KGENTS_HOME": str(home),
            "KGENTS_POSTGRES_URL": self.pg_url,
            "KGENTS_POSTGRES_SCHEMA": self.schema,
            "KGENTS_PERSONA": "campaign",
        }
        return env | extra

    def claim(self, what: str, ok: bool, detail: str) -> None:
        self.claims.append(Claim(what, ok, detail))
        mark = "[green]ok[/]" if ok else "[red]FAILED[/]"
        console.print(f"{mark} {what}: {detail}", highlight=False)


def kgents(*args: str) -> list[str]:
    """The `kgents` entry point of this interpreter's environment."""
    return [str(Path(sys.executable).parent / "kgents"), *args]


def wait_for(probe: Callable[[], bool], timeout: float, what: str) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return True
        time.sleep(0.05)
    console.print(f"[yellow]gave up waiting for {what} after {timeout:g} s[/]")
    return False


# -- writers ---------------------------------------------------------------------------------------------------------
async def writer(seconds: float, seed: int) -> dict[str, int]:
    """Plant, nurture, delete and re-plant under the same id until the time is up (runs in its own process)."""
    from kgents.config import Settings
    from kgents.errors import KgentsError
    from kgents.garden.service import PersonaGarden
    from kgents.garden.store import open_store

    rng = random.Random(seed)
    store = await open_store(Settings.from_env())
    garden = PersonaGarden(store, "campaign")
    live: list[uuid.UUID] = []
    deleted: list[uuid.UUID] = []
    counts = {"planted": 0, "nurtured": 0, "deleted": 0, "replanted": 0, "errors": 0}
    deadline = time.monotonic() + seconds
    n = 0
    try:
        while time.monotonic() < deadline:
            n += 1
            roll = rng.random()
            try:
                if deleted and roll < 0.1:
                    entry_id = deleted.pop(rng.randrange(len(deleted)))
                    await garden.plant(f"writer {seed} re-planted {entry_id} as note {n}", "INSIGHT", entry_id=entry_id)
                    live.append(entry_id)
                    counts["replanted"] += 1
                elif live and roll < 0.3:
                    entry_id = live.pop(rng.randrange(len(live)))
                    await garden.delete(entry_id)
                    deleted.append(entry_id)
                    counts["deleted"] += 1
                elif live and roll < 0.55:
                    await garden.nurture(rng.choice(live), evidence=f"seen again ({n})")
                    counts["nurtured"] += 1
                else:
                    entry = await garden.plant(f"writer {seed} prefers pattern {n} of {rng.random():.6f}", "PATTERN")
                    live.append(entry.id)
                    counts["planted"] += 1
            except KgentsError:
                counts["errors"] += 1
    finally:
        await store.close()
    return counts


# -- the parts of the campaign -----------------------------------------------------------------------------------
def start_relay(c: Campaign) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        kgents("synapse", "run", "--poll", "0.2", "--lease", "2"),
        env=c.env(c.home_a),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def relay_and_kills(c: Campaign, seconds: float, kills: int) -> None:
    writers = [
        subprocess.Popen(
            [sys.executable, __file__, "--writer", str(seconds), "--seed", str(i)],
            env=c.env(c.home_a),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(2)
    ]
    relay = start_relay(c)
    killed = 0
    for k in range(kills):
        time.sleep(seconds / (kills + 1))
        relay.send_signal(signal.SIGKILL)
        relay.wait()
        killed += 1
        console.print(f"  relay killed with SIGKILL ({k + 1}/{kills}), restarting")
        relay = start_relay(c)
    second_home(c)
    totals: dict[str, int] = {}
    for w in writers:
        out, err = w.communicate(timeout=seconds + 60)
        if w.returncode != 0:
            c.claim("writers finish", False, err.decode(errors="replace").strip().splitlines()[-1:][0])
            continue
        for key, value in json.loads(out).items():
            totals[key] = totals.get(key, 0) + value
    c.claim(
        "2 writers under relay kills",
        killed == kills and totals.get("errors", 1) == 0,
        f"{killed} SIGKILLs; " + ", ".join(f"{k} {v}" for k, v in totals.items()),
    )
    relay.send_signal(signal.SIGTERM)
    try:
        relay.wait(timeout=30)
        c.claim("relay stops on SIGTERM", relay.returncode == 0, f"exit {relay.returncode}")
    except subprocess.TimeoutExpired:
        relay.kill()
        c.claim("relay stops on SIGTERM", False, "still running after 30 s")


def second_home(c: Campaign) -> None:
    """Another home over the same schema must not drain events into its own index."""
    run = subprocess.run(
        kgents("synapse", "run", "--once"), env=c.env(c.home_b), capture_output=True, timeout=120, check=False
    )
    err = run.stderr.decode(errors="replace").strip()
    c.claim(
        "a second home refuses to relay",
        run.returncode == 78 and err.count("\n") == 0,
        f"exit {run.returncode}: {err[:160]}",
    )
    search = subprocess.run(
        kgents("garden", "search", "pattern"), env=c.env(c.home_b), capture_output=True, timeout=120, check=False
    )
    c.claim("a second home refuses to search", search.returncode == 78, f"exit {search.returncode}")


async def final_coherency(c: Campaign) -> None:
    from kgents.config import Settings
    from kgents.synapse.runtime import open_synapse

    env = c.env(c.home_a)
    synapse = await open_synapse(Settings.from_env(env))
    try:
        started = time.monotonic()
        while await synapse.queue.queue_depth(1) and time.monotonic() - started < 120:
            await synapse.drain(timeout_s=30)
        report = await synapse.coherency()
        d = report.to_dict()
        c.claim(
            "coherency_with_truth after the campaign",
            report.coherent and report.total > 0,
            f"{report.coherency_with_truth:.4f} (matched {d.get('matched')}, stale {d.get('stale')},"
            f" missing {d.get('missing')}, orphaned {d.get('orphaned')})",
        )
    finally:
        await synapse.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stalled_redis(c: Campaign) -> None:
    if shutil.which("redis-server") is None:
        c.claim("stalled Redis", False, "redis-server is not installed")
        return
    port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = c.env(c.home_a, KGENTS_REDIS_URL=f"redis://127.0.0.1:{port}/0", KGENTS_SPARK_PREFIX="campaign")

    def soul(*args: str) -> tuple[int, str, float]:
        started = time.monotonic()
        run = subprocess.run(kgents("soul", *args), env=env, capture_output=True, timeout=180, check=False)
        return run.returncode, run.stdout.decode(errors="replace"), time.monotonic() - started

    try:
        wait_for(lambda: soul("show")[0] == 0, 10, "the private Redis")
        soul("mode", "challenge")
        redis.send_signal(signal.SIGSTOP)
        code, _, took = soul("mode", "explore")
        code_show, out, took_show = soul("show", "--json")
        mode = json.loads(out).get("state", {}).get("mode") if code_show == 0 and out.strip() else None
        c.claim(
            "soul commands with Redis stalled",
            code == 0 and code_show == 0 and max(took, took_show) < 5 and str(mode).upper() == "EXPLORE",
            f"mode change {took:.1f} s, show {took_show:.1f} s, mode read {mode}",
        )
        redis.send_signal(signal.SIGCONT)
        code, out, _ = soul("show", "--json")
        mode = json.loads(out).get("state", {}).get("mode") if code == 0 and out.strip() else None
        c.claim("no stale soul after Redis returns", str(mode).upper() == "EXPLORE", f"mode read {mode}")
    finally:
        redis.send_signal(signal.SIGCONT)
        redis.terminate()
        redis.wait(timeout=10)


async def drop_schema(pg_url: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="How long the writers write.")
    parser.add_argument("--kills", type=int, default=3, help="How many times the relay is killed with SIGKILL.")
    parser.add_argument(
        "--postgres-url", default=os.environ.get("KGENTS_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
    )
    parser.add_argument("--writer", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer is not None:
        print(json.dumps(asyncio.run(writer(args.writer, args.seed))))
        return 0
    with tempfile.TemporaryDirectory(prefix="kgents-campaign-") as tmp:
        c = Campaign(args.postgres_url, f"campaign_{uuid.uuid4().hex[:10]}", Path(tmp) / "a", Path(tmp) / "b")
        console.print(f"campaign on schema {c.schema}, homes {c.home_a} and {c.home_b}")
        try:
            relay_and_kills(c, args.seconds, args.kills)
            asyncio.run(final_coherency(c))
            stalled_redis(c)
        finally:
            asyncio.run(drop_schema(c.pg_url, c.schema))
    table = Table(title="fault campaign")
    for column in ("claim", "result", "measured"):
        table.add_column(column)
    for claim in c.claims:
        table.add_row(claim.what, "[green]ok[/]" if claim.ok else "[red]FAILED[/]", claim.detail)
    Console().print(table)
    return 0 if all(claim.ok for claim in c.claims) else 1


if __name__ == "__main__":
    sys.exit(main())

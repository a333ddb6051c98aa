"""Every kgents process works beside every other on one KGENTS_HOME (embedded default), with real processes.

With `kgents synapse run` (on the embedded default: the server) running, 4 searchers, 2 writers (the CLI's
`garden plant`, and the Python face `Memory`) and `synapse status` in a loop run for a bounded time: no process
fails, and the index ends coherent with the anchor (1.0). Without a server, concurrent searches wait for the
index's owner instead of failing."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kgents.config import Settings
from tests.helpers import kgents_env, wait_until_sync
from tests.server_support import KGENTS, cli, running_server

pytestmark = pytest.mark.slow

LOAD_S = 12.0
"""How long the mixed load runs (bounded: every loop stops by itself)."""
STATUS_OK = {0, 1}
"""`synapse status` exit codes that are answers about health (OK, WARNING while writes are in flight)."""

FACE_WRITER = """
import sys, time
from kgents import Memory
deadline = time.monotonic() + float(sys.argv[1])
n = 0
with Memory() as m:
    while time.monotonic() < deadline:
        m.remember(f"face writer note {n} about gardens and databases", tags=["face"])
        n += 1
print(n)
"""


@dataclass
class Tally:
    runs: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, ok: bool, detail: str) -> None:
        with self.lock:
            self.runs[kind] += 1
            if not ok:
                self.failures.append(f"{kind}: {detail}")


def loop(deadline: float, step: Any) -> None:
    while time.monotonic() < deadline:
        step()


def searcher(settings: Settings, tally: Tally, n: int) -> Any:
    def step() -> None:
        done = cli(settings, "garden", "search", f"gardens and databases {n}", "--json")
        ok = done.returncode == 0 and isinstance(json.loads(done.stdout or "null"), dict)
        tally.record("search", ok, f"exit {done.returncode}: {done.stderr.strip()[-300:]}")

    return step


def planter(settings: Settings, tally: Tally) -> Any:
    count = iter(range(1_000_000))

    def step() -> None:
        done = cli(settings, "garden", "plant", f"cli writer note {next(count)} about gardens", "--tag", "cli")
        tally.record("plant", done.returncode == 0, f"exit {done.returncode}: {done.stderr.strip()[-300:]}")

    return step


def status(settings: Settings, tally: Tally) -> Any:
    def step() -> None:
        done = cli(settings, "synapse", "status", "--json")
        tally.record("status", done.returncode in STATUS_OK, f"exit {done.returncode}: {done.stderr.strip()[-300:]}")

    return step


def coherency(settings: Settings) -> dict[str, Any]:
    done = cli(settings, "synapse", "status", "--json")
    assert done.returncode in STATUS_OK | {2, 3}, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)["coherency"]
    return report


def test_searchers_writers_and_status_beside_the_relay(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", persona="kent")
    seeded = cli(settings, "garden", "plant", "I prefer minimal code", "--tag", "seed")
    assert seeded.returncode == 0, seeded.stderr
    with running_server(settings, "synapse", "run") as server:
        tally = Tally()
        deadline = time.monotonic() + LOAD_S
        steps = [searcher(settings, tally, n) for n in range(4)] + [planter(settings, tally), status(settings, tally)]
        threads = [threading.Thread(target=loop, args=(deadline, step)) for step in steps]
        face = subprocess.Popen(
            [sys.executable, "-c", FACE_WRITER, str(LOAD_S)],
            env=kgents_env(settings),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        out, err = face.communicate(timeout=120)
        took = time.monotonic() - began
        assert face.returncode == 0, err
        face_writes = int(out.strip())
        print(f"\nconcurrency: {dict(tally.runs)}, face writes {face_writes}, {took:.1f} s, failures {tally.failures}")
        assert tally.failures == []
        assert tally.runs["search"] >= 4 and tally.runs["plant"] >= 1 and tally.runs["status"] >= 1
        assert face_writes >= 1

        final = wait_until_sync(
            lambda: coherency(settings), lambda r: r["coherency_with_truth"] == 1.0, timeout=60, what="coherency 1.0"
        )
        assert final["matched"] == 1 + tally.runs["plant"] + face_writes
        listed = cli(settings, "garden", "list", "--json")
        assert listed.returncode == 0 and json.loads(listed.stdout)["total"] == final["matched"]
        code, _, err = server.stop()
        assert code == 0, err


def test_concurrent_searches_without_a_server_wait_for_the_owner(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", persona="kent")
    assert cli(settings, "garden", "plant", "I prefer minimal code").returncode == 0
    searches = [
        subprocess.Popen(
            [str(KGENTS), "garden", "search", "simplicity", "--json"],
            env=kgents_env(settings),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [(p.wait(timeout=120), *p.communicate()) for p in searches]
    assert [code for code, _, _ in results] == [0, 0, 0, 0], [err for _, _, err in results]
    assert all(json.loads(out)["hits"][0]["content"] == "I prefer minimal code" for _, out, _ in results)
    assert not any("in use by" in err and "waiting" not in err for _, _, err in results)

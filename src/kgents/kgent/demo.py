"""The seed's end-to-end scenario (Phase 6), each claim proven by a figure measured in this run.

Sessions 1 and 2 run here; session 3 runs in a new process (`kgents.kgent.probe`) and must remember; a writer
process is killed with SIGKILL mid-stream and every write it acknowledged must be in the anchor.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kgents.config import Settings

if TYPE_CHECKING:
    from kgents.kgent import KGent
    from kgents.memory import AsyncMemory

Step = Callable[[str], None]
"""Says one numbered step of the scenario."""

EARLIER = ("I prefer minimal code",)
TODAY = ("Please never add comments that repeat the code", "I value tests that talk to real databases")
QUESTION = "What do you know about my style?"
SEARCH_MS_MAX = 50.0
RECOVERY_MS_MAX = 100.0
WRITER_ACKS = 5
PROCESS_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    before: str
    after: str
    claim: str
    ok: bool


@dataclass
class DemoRun:
    steps: list[str] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(m.ok for m in self.metrics)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "steps": self.steps,
            "metrics": [
                {"metric": m.name, "before": m.before, "after": m.after, "claim": m.claim, "ok": m.ok}
                for m in self.metrics
            ],
        }


def child_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process open the same memory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGENTS_")}
    values = {
        "KGENTS_HOME": str(settings.home),
        "KGENTS_PERSONA": settings.persona,
        "KGENTS_POSTGRES_URL": settings.postgres_url,
        "KGENTS_POSTGRES_SCHEMA": settings.postgres_schema,
        "KGENTS_QDRANT_URL": settings.qdrant_url,
        "KGENTS_QDRANT_API_KEY": settings.qdrant_api_key,
        "KGENTS_REDIS_URL": settings.redis_url,
        "KGENTS_EMBEDDER": settings.embedder,
        "KGENTS_SPARK_PREFIX": settings.spark_prefix,
    }
    env.update({k: v for k, v in values.items() if v})
    return env


def recall_share(taught: tuple[str, ...], cited: list[str]) -> float:
    got = {c.lower() for c in cited}
    return sum(1 for t in taught if t.lower() in got) / len(taught)


@dataclass
class _Figures:
    """What the run measured, for its metrics table."""

    coherency: float = 0.0
    search_ms: float = 0.0
    share_here: float = 0.0
    """Of what the earlier session taught, the share in today's answer (this process)."""
    share: float = 0.0
    """Of everything taught, the share a new session in a new process remembers."""
    recovery_ms: float = 0.0
    acked: int = 0
    found: int = 0


async def scenario(settings: Settings, say: Callable[[str], None]) -> DemoRun:
    run = DemoRun()

    def step(text: str) -> None:
        run.steps.append(text)
        say(f"{len(run.steps):>2}. {text}")

    figures = _Figures()
    await _sessions_here(settings, step, figures)
    await _new_process_remembers(settings, step, figures)
    await _killed_writer_loses_nothing(settings, step, figures)
    run.metrics = _metrics(figures)
    return run


async def _sessions_here(settings: Settings, step: Step, figures: _Figures) -> None:
    """Sessions 1 and 2 in this process: the earlier one teaches; today's states, is stored, relayed, asked."""
    from kgents.kgent import KGent
    from kgents.memory import AsyncMemory

    async with AsyncMemory(settings=settings) as memory:
        await _earlier_session(memory)
        kg = KGent(memory)
        soul = await kg.open()
        step(
            f"session starts for {memory.persona}: soul {soul.source},"
            f" {soul.interactions} earlier session(s), mode {soul.mode}"
        )
        await _state_preferences(kg, memory, settings, step)
        figures.coherency = await _relay_and_measure(memory, step)
        figures.search_ms, figures.share_here = await _ask(kg, memory, step)
        await kg.close()
        after = await memory.soul()
        step(f"the session ends: soul saved at revision {after.revision}, {after.interactions} session(s) counted")


async def _earlier_session(memory: AsyncMemory) -> None:
    from kgents.kgent import KGent

    earlier = KGent(memory)
    await earlier.open()
    for line in EARLIER:
        await earlier.observe(line)
    await earlier.close()


async def _state_preferences(kg: KGent, memory: AsyncMemory, settings: Settings, step: Step) -> None:
    learned = [await kg.observe(line) for line in TODAY]
    step("the user states preferences: " + "; ".join(f'"{t}"' for t in TODAY))
    ids = [r.learned.entry.id for r in learned if r.learned]
    stored = [await memory.get(i) for i in ids]
    step(
        f"stored in the anchor ({settings.describe_anchor()}): "
        + ", ".join(f"{e.id.hex[:8]} {e.entry_type.value}" for e in stored)
    )


async def _relay_and_measure(memory: AsyncMemory, step: Step) -> float:
    """Relay what is pending, then measure the index against the truth; returns the coherency."""
    drained = await memory.synapse.catch_up()
    step(
        f"Synapse carried them to the index ({memory.synapse.index.backend}): searchable on return,"
        f" {drained.completed} more event(s) relayed now"
    )
    report = await memory.synapse.coherency()
    coherency = report.coherency_with_truth
    step(
        f"coherency with the truth: {coherency:.0%} ({report.matched} matched, {report.stale} stale,"
        f" {report.missing} missing, {report.orphaned} orphaned)"
    )
    return coherency


async def _ask(kg: KGent, memory: AsyncMemory, step: Step) -> tuple[float, float]:
    """The question, timed as a search and answered by K-gent; returns (search ms, share of the earlier session
    in the answer)."""
    step(f'the user asks: "{QUESTION}"')
    began = time.perf_counter()
    await memory.recall(QUESTION, limit=5)
    search_ms = (time.perf_counter() - began) * 1000.0
    reply = await kg.observe(QUESTION)
    step(f"K-gent answers from semantic search ({search_ms:.1f} ms):\n" + reply.text)
    cited = [e.content for e in reply.cited]
    share_here = recall_share(EARLIER, cited)
    step(f"the answer includes what the earlier session taught: {share_here:.0%} of it")
    return search_ms, share_here


async def _new_process_remembers(settings: Settings, step: Step, figures: _Figures) -> None:
    probe = await asyncio.to_thread(_ask_in_new_process, settings)
    figures.share = recall_share((*EARLIER, *TODAY), probe["cited"])
    figures.recovery_ms = probe["recovery_ms"]
    step(
        f"a new session in a new process (soul from {probe['soul_source']} in {probe['recovery_ms']:.1f} ms)"
        f" remembers {figures.share:.0%} of what it was taught"
    )


async def _killed_writer_loses_nothing(settings: Settings, step: Step, figures: _Figures) -> None:
    acked, figures.found = await _durability(settings)
    figures.acked = len(acked)
    step(
        f"a writer process killed with SIGKILL after {figures.acked} acknowledged writes: {figures.found} of them"
        " in the anchor"
    )


def _metrics(f: _Figures) -> list[Metric]:
    """The claims table: each claim against the figure this run measured."""
    return [
        Metric(
            "Pattern recall across sessions", "0%", f"{f.share:.0%}", "100%", f.share == 1.0 and f.share_here == 1.0
        ),
        Metric(
            "Semantic search latency",
            "N/A",
            f"{f.search_ms:.1f} ms",
            f"< {SEARCH_MS_MAX:.0f} ms",
            f.search_ms < SEARCH_MS_MAX,
        ),
        Metric(
            "Session recovery time",
            "Full restart",
            f"{f.recovery_ms:.1f} ms",
            f"< {RECOVERY_MS_MAX:.0f} ms",
            f.recovery_ms < RECOVERY_MS_MAX,
        ),
        Metric("Coherency visibility", "None", f"{f.coherency:.0%} measured", "100%", f.coherency == 1.0),
        Metric(
            "Data durability (kill -9 of a writer)",
            "File-based",
            f"{f.found}/{f.acked} acknowledged writes kept",
            "all",
            f.acked > 0 and f.found == f.acked,
        ),
    ]


def _ask_in_new_process(settings: Settings) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "kgents.kgent.probe", "ask", QUESTION],
        env=child_env(settings),
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the new session failed: {done.stderr.strip()[-300:]}")
    data: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return data


async def _durability(settings: Settings) -> tuple[list[uuid.UUID], int]:
    """Start a writer, kill -9 it after WRITER_ACKS acknowledged writes, count those found in the anchor."""
    acked = await asyncio.to_thread(_killed_writer, settings)
    from kgents.garden.store import open_store

    store = await open_store(settings)
    try:
        found = 0
        for entry_id in acked:
            if await store.get(settings.persona, entry_id) is not None:
                found += 1
    finally:
        await store.close()
    return acked, found


def _killed_writer(settings: Settings) -> list[uuid.UUID]:
    writer = subprocess.Popen(
        [sys.executable, "-m", "kgents.kgent.probe", "write", "1000"],
        env=child_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    acked: list[uuid.UUID] = []
    try:
        assert writer.stdout is not None
        deadline = time.monotonic() + PROCESS_TIMEOUT_S
        while len(acked) < WRITER_ACKS and time.monotonic() < deadline:
            line = writer.stdout.readline()
            if not line:
                break
            acked.append(uuid.UUID(line.strip()))
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=PROCESS_TIMEOUT_S)
    return acked

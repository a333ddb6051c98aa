"""`LoopThread` (kgents.loop_thread) against anyio's blocking portal (`anyio.from_thread.start_blocking_portal`),
the two ways a synchronous caller can wait on a coroutine run on an event loop thread of its own (issue 19).

    python bench/loop_portal.py [--rounds 2000] [--entries 200] [--dir /dev/shm]

Per call, from a plain thread, round after round in turn (so a busy machine weighs on both alike):
- a trivial awaited call (`async def nothing(): return None`): the cost of the hop itself;
- `get` and `recall` on a small embedded garden (SQLite + the embedded index, the static embedder), an
  `AsyncMemory` opened on each loop (one temporary home each, the same entries), with the same call awaited on the
  loop itself as the baseline, and `Memory` (the synchronous face, on a LoopThread) beside them.

Then what becomes of a call still running when the loop stops: a thread waits on a coroutine that never ends, or
on a blocking call on the loop's default executor (`asyncio.to_thread`, as the embedder and the embedded index's
file work run), and the loop is stopped (`LoopThread.stop()`; the portal's `with` left normally;
`portal.stop(cancel_remaining=True)`): is the waiting thread released, with what, and how long did stopping take.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal

from kgents.config import Settings
from kgents.loop_thread import LoopThread
from kgents.memory.api import MemoryItem
from kgents.memory.local import AsyncMemory
from kgents.memory.sync import Memory
from kgents.stats import percentile

PERSONA = "kent"
WAIT_S = 3.0
"""How long the stop check waits for the waiting caller to be released before it calls it stuck."""
STOP_S = 8.0
"""How long it waits for the stop itself."""
BLOCKED_S = 5.0


async def nothing() -> None:
    return None


def alternate(rounds: int, *ops: Callable[[int], object]) -> list[list[float]]:
    samples: list[list[float]] = [[] for _ in ops]
    for i in range(rounds):
        for op, out in zip(ops, samples, strict=True):
            start = time.perf_counter()
            op(i)
            out.append((time.perf_counter() - start) * 1000)
    return samples


def line(name: str, samples: list[float], against: list[float] | None = None) -> str:
    p50, p95 = percentile(samples, 0.5) or 0.0, percentile(samples, 0.95) or 0.0
    text = f"{name:<46} p50 {p50:8.4f} ms   p95 {p95:8.4f} ms"
    if against is not None:
        b50, b95 = percentile(against, 0.5) or 1e-9, percentile(against, 0.95) or 1e-9
        text += f"   x {p50 / b50:4.2f} / {p95 / b95:4.2f} of LoopThread"
    return text


@contextlib.contextmanager
def loops() -> Iterator[tuple[LoopThread, BlockingPortal]]:
    thread = LoopThread("bench-loop-thread")
    try:
        with start_blocking_portal(name="bench-portal") as portal:
            yield thread, portal
    finally:
        thread.stop()


async def in_loop(rounds: int, work: Callable[[int], Coroutine[Any, Any, object]]) -> list[float]:
    """The call awaited on the loop itself: what neither hop adds to."""
    samples = []
    for i in range(rounds):
        start = time.perf_counter()
        await work(i)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


async def seeded(home: Path, entries: int) -> AsyncMemory:
    settings = Settings(home=home, embedder="minilm-static-256")
    memory = await AsyncMemory.open(settings, PERSONA)
    items = [MemoryItem(f"note {i}: the garden grows {i % 17} trees beside {i % 5} ponds") for i in range(entries)]
    await memory.remember_many(items)
    return memory


def calls(rounds: int, entries: int, folder: Path) -> None:
    queries = ["how many trees", "the ponds", "the garden grows", "trees beside ponds", "note 7"]
    with loops() as (thread, portal):
        hop, across = alternate(rounds, lambda _: thread.run(nothing()), lambda _: portal.call(nothing))
        print(line("trivial call, LoopThread.run", hop))
        print(line("trivial call, portal.call", across, hop))

        a = thread.run(seeded(folder / "a", entries))
        b = portal.call(seeded, folder / "b", entries)
        face = Memory(PERSONA, Settings(home=folder / "c", embedder="minilm-static-256"))
        try:
            face.remember_many([MemoryItem(f"note {i}: the garden grows {i % 17} trees") for i in range(entries)])
            ids = [e.id for e in thread.run(a.list(limit=entries))]
            ids_b = [e.id for e in portal.call(b.list, None)]
            ids_c = [e.id for e in face.list(limit=entries)]
            base = thread.run(in_loop(rounds, lambda i: a.get(ids[i % len(ids)])))
            hop, across, synced = alternate(
                rounds,
                lambda i: thread.run(a.get(ids[i % len(ids)])),
                lambda i: portal.call(b.get, ids_b[i % len(ids_b)]),
                lambda i: face.get(ids_c[i % len(ids_c)]),
            )
            print(line(f"get, awaited on the loop (baseline), {entries} entries", base))
            print(line("get, LoopThread.run", hop))
            print(line("get, portal.call", across, hop))
            print(line("get, Memory (the face, on a LoopThread)", synced, hop))

            base = thread.run(in_loop(rounds, lambda i: a.recall(queries[i % len(queries)])))
            hop, across, synced = alternate(
                rounds,
                lambda i: thread.run(a.recall(queries[i % len(queries)])),
                lambda i: portal.call(b.recall, queries[i % len(queries)]),
                lambda i: face.recall(queries[i % len(queries)]),
            )
            print(line("recall, awaited on the loop (baseline)", base))
            print(line("recall, LoopThread.run", hop))
            print(line("recall, portal.call", across, hop))
            print(line("recall, Memory (the face, on a LoopThread)", synced, hop))
        finally:
            face.close()
            thread.run(a.close())
            portal.call(b.close)


async def forever(started: threading.Event) -> None:
    started.set()
    await asyncio.Event().wait()


def waiter(call: Callable[[], object], outcome: list[str]) -> threading.Thread:
    def wait() -> None:
        try:
            call()
            outcome.append("returned")
        except BaseException as exc:  # what ended the wait is the figure
            outcome.append(f"{type(exc).__module__}.{type(exc).__qualname__}")

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    return thread


def verdict(name: str, stopping: Callable[[], None], caller: threading.Thread, outcome: list[str]) -> None:
    """Stop (on a thread of its own, so a stop that hangs is seen, not joined) and see the waiting caller."""
    start = time.perf_counter()
    stopper = threading.Thread(target=stopping, daemon=True)
    stopper.start()
    caller.join(WAIT_S)
    waited = (time.perf_counter() - start) * 1000
    released = f"{outcome[0]} after {waited:.1f} ms" if outcome else f"still waiting at {WAIT_S:g} s"
    stopper.join(STOP_S)
    took = (time.perf_counter() - start) * 1000
    stopped = f"stop took {took:7.1f} ms" if not stopper.is_alive() else f"stop still running after {STOP_S:g} s"
    print(f"{name:<46} {stopped}; the caller: {released}")


def on_stop(work: Callable[[threading.Event], Coroutine[Any, Any, None]], what: str) -> None:
    """A caller waits on `work` (which never ends, or ends late) and the loop is stopped."""
    print(f"-- a caller waiting on {what} when the loop stops")
    thread, started, outcome = LoopThread("bench-stop"), threading.Event(), list[str]()
    caller = waiter(lambda: thread.run(work(started)), outcome)
    started.wait(WAIT_S)
    verdict("LoopThread.stop()", thread.stop, caller, outcome)

    for cancel in (False, True):
        started, outcome = threading.Event(), list[str]()
        context = start_blocking_portal(name="bench-stop-portal")
        portal = context.__enter__()

        def call(p: BlockingPortal = portal, s: threading.Event = started) -> object:
            return p.call(work, s)

        caller = waiter(call, outcome)
        started.wait(WAIT_S)

        def stopping(p: BlockingPortal = portal, c: Any = context, cancel: bool = cancel) -> None:
            if cancel:
                p.call(p.stop, True)
            c.__exit__(None, None, None)

        name = "portal.stop(cancel_remaining=True), then exit" if cancel else "portal's `with` left normally"
        verdict(name, stopping, caller, outcome)


async def blocked(started: threading.Event) -> None:
    """A blocking call on the loop's default executor (as the embedder and the embedded index's files are)."""
    started.set()
    await asyncio.to_thread(time.sleep, BLOCKED_S)


def after_stop() -> None:
    """A call made after the stop: refused at once by both."""
    thread = LoopThread("bench-after")
    thread.stop()
    coroutine = nothing()
    try:
        thread.run(coroutine)
    except RuntimeError as exc:
        print(f"{'LoopThread, a call after stop()':<46} RuntimeError: {exc}")
    with start_blocking_portal() as portal:
        pass
    try:
        portal.call(nothing)
    except RuntimeError as exc:
        print(f"{'portal, a call after the `with`':<46} RuntimeError: {exc}")


def main(rounds: int, entries: int, where: str | None) -> None:
    print(f"loop thread against blocking portal: {rounds} rounds, {entries} entries per garden")
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        calls(rounds, entries, Path(tmp))
    on_stop(forever, "a coroutine that never ends")
    on_stop(blocked, f"a blocking call of {BLOCKED_S:g} s on the default executor")
    after_stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--entries", type=int, default=200)
    parser.add_argument("--dir", default=None, help="where to make the temporary homes (default: the system's)")
    args = parser.parse_args()
    main(args.rounds, args.entries, args.dir)

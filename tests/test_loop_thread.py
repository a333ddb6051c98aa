"""The workbench's LoopThread: stopping it while a worker thread waits on a coroutine there must release that
thread (the coroutine is cancelled), or the thread waits for ever and so does everything that joins it: the event
loop's executor shutdown at exit hung a CI run this way."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import pytest

from kgents.loop_thread import LoopThread

DEADLINE_S = 10.0


async def forever(started: threading.Event) -> None:
    started.set()
    await asyncio.Event().wait()


def test_stop_releases_a_thread_waiting_on_the_loop() -> None:
    io = LoopThread("test-io")
    started = threading.Event()
    outcome: list[BaseException | None] = []

    def waiter() -> None:
        try:
            io.run(forever(started))
            outcome.append(None)
        except BaseException as exc:  # the test wants whatever ended the wait
            outcome.append(exc)

    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    assert started.wait(DEADLINE_S), "the coroutine never started"
    io.stop()
    thread.join(DEADLINE_S)
    assert not thread.is_alive(), "stop() left a thread waiting for ever on a coroutine that will never run again"
    [exc] = outcome
    assert isinstance(exc, concurrent.futures.CancelledError)


def test_work_submitted_after_stop_fails_at_once() -> None:
    io = LoopThread("test-io")
    io.stop()
    coroutine = forever(threading.Event())
    with pytest.raises(RuntimeError, match="has stopped"):
        io.run(coroutine, timeout=DEADLINE_S)


def test_a_coroutine_past_its_timeout_is_cancelled_and_says_so() -> None:
    io = LoopThread("test-io")
    try:
        started = threading.Event()
        with pytest.raises(TimeoutError, match=r"no answer within 0\.2 s"):
            io.run(forever(started), timeout=0.2)
        assert started.is_set()
        left = io.run(_others(), timeout=DEADLINE_S)
        assert left == 0, "the abandoned coroutine still runs on the loop"
    finally:
        io.stop()


async def _others() -> int:
    for _ in range(100):
        if len(asyncio.all_tasks()) == 1:
            return 0
        await asyncio.sleep(0.01)
    return len(asyncio.all_tasks()) - 1


async def _times_out_itself() -> None:
    raise TimeoutError("the work's own timeout")


def test_the_works_own_timeout_error_passes_through() -> None:
    io = LoopThread("test-io")
    try:
        with pytest.raises(TimeoutError, match="the work's own timeout"):
            io.run(_times_out_itself())
        with pytest.raises(TimeoutError, match="the work's own timeout"):
            io.run(_times_out_itself(), timeout=DEADLINE_S)
    finally:
        io.stop()

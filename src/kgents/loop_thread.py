"""An asyncio event loop on a daemon thread of its own, for synchronous callers: `Memory` (plain code, Jupyter,
inside another running loop) and the workbench (its refresh workers, off the UI's loop).

`stop()` cancels whatever still runs there before it stops the loop, so no caller is left waiting for ever on a
coroutine that will never run again (a caller joined at exit would hang the process with it).

Why not anyio's blocking portal (`anyio.from_thread.start_blocking_portal`, issue 19), measured by
bench/loop_portal.py (2,000 rounds from a plain thread, alternated; a 2-core machine shared with other work):
- a call costs more through the portal: a trivial awaited call p50 0.28 ms against 0.16 ms here (x1.7; p95 x1.4),
  `get` on a 200-entry embedded garden 0.52 ms against 0.38 ms (x1.4); on `recall` (p50 ~8.5 ms) it is lost in
  the work (x1.0);
- its stop waits for the loop's default executor: a caller waiting on a blocking call there (`asyncio.to_thread`,
  as the embedder and the embedded index's file work run) is released at once, but the stop itself takes as long
  as that call still has to run (5.0 s for a 5 s call, `cancel_remaining=True` or not; asyncio.run's executor
  shutdown), where `stop()` here returns in ~1 ms (the loop closes without joining its executor);
- leaving its `with` normally waits for every call still running (a call that never ends: the stop never does);
  only `portal.stop(cancel_remaining=True)` cancels, as `stop()` here always does."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    STOP_S = 5.0
    """How long `stop()` waits for cancelled work to finish and for the thread to end."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._stopped = False
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def submit(self, work: Coroutine[Any, Any, T]) -> Future[T]:
        if self._stopped:
            work.close()
            raise RuntimeError(f"the {self._thread.name} event loop has stopped")
        if threading.current_thread() is self._thread:
            work.close()
            raise RuntimeError(f"cannot wait on the {self._thread.name} event loop from its own thread")
        return asyncio.run_coroutine_threadsafe(work, self.loop)

    def run(self, work: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """The coroutine's result; past `timeout` it is cancelled and TimeoutError says how long it had."""
        future = self.submit(work)
        try:
            return future.result(timeout)
        except TimeoutError:
            if future.done() or timeout is None:
                raise  # the work's own TimeoutError, not our wait's
            future.cancel()
            raise TimeoutError(f"no answer within {timeout:g} s") from None

    def stop(self) -> None:
        """Cancel what still runs, stop the loop, end the thread; a second call does nothing."""
        if self._stopped:
            return
        self._stopped = True
        if self.loop.is_running():
            with contextlib.suppress(Exception):  # best effort: the loop stops below whatever happens here
                asyncio.run_coroutine_threadsafe(_cancel_all(), self.loop).result(self.STOP_S)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=self.STOP_S)
        if not self.loop.is_running():
            self.loop.close()


async def _cancel_all() -> None:
    """Cancel every other task on the running loop and wait until they have finished."""
    me = asyncio.current_task()
    others = [t for t in asyncio.all_tasks() if t is not me]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)

"""`Memory`: the synchronous face. It runs its own event loop on a background thread, so it works from plain
code, from Jupyter and from inside any other running loop (calls never touch the caller's loop)."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from kgents.config import Settings
from kgents.loop_thread import LoopThread
from kgents.memory.api import MemoryAPI
from kgents.memory.attachment import Attachment, attach_home, should_attach
from kgents.memory.endpoint import ServerGoneError
from kgents.memory.factory import open_memory

T = TypeVar("T")
P = ParamSpec("P")
log = logging.getLogger("kgents.memory")


def _sync_method(
    method: Callable[Concatenate[MemoryAPI, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[Memory, P], T]:
    """`Memory`'s method of one `MemoryAPI` method: the same parameters, waiting for the coroutine of the memory
    underneath on this Memory's loop thread. Typed from the protocol (`Memory(...).recall(...)` is a
    `list[RecallHit]` to mypy), with its name, docstring and signature (`__wrapped__`: `help()`, `inspect`), so the
    synchronous face cannot drift from the asynchronous one."""
    name = method.__name__

    def call(self: Memory, /, *args: P.args, **kwargs: P.kwargs) -> T:
        def work(memory: MemoryAPI) -> Coroutine[Any, Any, T]:
            bound: Callable[P, Coroutine[Any, Any, T]] = getattr(memory, name)
            return bound(*args, **kwargs)

        return self._call(work)

    functools.update_wrapper(call, method)
    call.__module__, call.__qualname__ = __name__, f"Memory.{name}"
    return call


class Memory:
    """One persona's memory, synchronously: `with Memory(persona="kent") as m: m.remember("…")`. Opened when
    made; `close()` (or leaving the `with`) releases it, and may be called more than once."""

    def __init__(self, persona: str | None = None, settings: Settings | None = None) -> None:
        self._settings = settings or Settings.from_env()
        self._persona = persona
        self._home: Attachment | None = None
        """The home this memory attached to after its server stopped (it may serve the home itself)."""
        self._runner: LoopThread | None = LoopThread("kgents-memory")
        try:
            self._memory: MemoryAPI = self._run(open_memory(self._settings, persona))
        except BaseException:
            self._runner.stop()
            self._runner = None
            raise

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._runner is None:
            coro.close()
            raise RuntimeError("this Memory is closed")
        return self._runner.run(coro)

    def _call(self, work: Callable[[MemoryAPI], Coroutine[Any, Any, T]]) -> T:
        """`work` on the memory; when the home's server it went through has stopped and no other one took over,
        the memory attaches to the home again and `work` runs there (`ServerGoneError` is raised only when that
        is safe: nothing was sent, or the request is idempotent)."""
        try:
            return self._run(work(self._memory))
        except ServerGoneError:
            self._reattach()
            return self._run(work(self._memory))

    def _reattach(self) -> None:
        """As `kgents mcp` does (`memory.attachment`): through the server that took over, or, on the embedded
        default with none left, as the home's server itself, so every other process of the home goes through this
        one instead of waiting for the index it holds; with the real triad, in this process."""

        old, home, self._home = self._memory, self._home, None
        with contextlib.suppress(Exception):
            self._run(home.close() if home is not None else old.close())
        if not should_attach(self._settings):
            self._memory = self._run(open_memory(self._settings, self._persona))
            return
        attached = attach_home(self._settings, self._persona, progress=log.warning)
        self._memory = self._run(attached.memory())
        self._home = attached

    @property
    def persona(self) -> str:
        return self._memory.persona

    @property
    def inner(self) -> MemoryAPI:
        """The asynchronous memory underneath (runs on this Memory's own loop thread): an `AsyncMemory`, or a
        `RemoteMemory` through the home's server."""
        return self._memory

    def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        try:
            runner.run(self._home.close() if self._home is not None else self._memory.close())
        finally:
            runner.stop()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __del__(self) -> None:  # a forgotten close still stops the thread (the loop closes its connections)
        if getattr(self, "_runner", None) is not None:
            with contextlib.suppress(Exception):
                self.close()

    # -- the face, call for call: each method of `MemoryAPI` but `close`, derived by `_sync_method` ------------
    remember = _sync_method(MemoryAPI.remember)
    remember_many = _sync_method(MemoryAPI.remember_many)
    recall = _sync_method(MemoryAPI.recall)
    get = _sync_method(MemoryAPI.get)
    list = _sync_method(MemoryAPI.list)
    update = _sync_method(MemoryAPI.update)  # type: ignore[arg-type]  # its `self` is not positional-only beside **fields
    nurture = _sync_method(MemoryAPI.nurture)
    forget = _sync_method(MemoryAPI.forget)
    reassess = _sync_method(MemoryAPI.reassess)
    compost = _sync_method(MemoryAPI.compost)
    history = _sync_method(MemoryAPI.history)
    soul = _sync_method(MemoryAPI.soul)
    set_mode = _sync_method(MemoryAPI.set_mode)
    nudge = _sync_method(MemoryAPI.nudge)
    record_interaction = _sync_method(MemoryAPI.record_interaction)
    status = _sync_method(MemoryAPI.status)
    build_index = _sync_method(MemoryAPI.build_index)

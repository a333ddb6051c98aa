"""`Memory`: the synchronous face. It runs its own event loop on a background thread, so it works from plain
code, from Jupyter and from inside any other running loop (calls never touch the caller's loop)."""

from __future__ import annotations

import builtins
import contextlib
import logging
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

from kgents.config import Settings
from kgents.garden.filters import EntryFilter
from kgents.garden.model import EntryType, GardenEntry
from kgents.garden.records import AuditRecord
from kgents.loop_thread import LoopThread
from kgents.memory.api import DEFAULT_TYPE, EntryRef, MemoryAPI, MemoryItem, RecallHit, SoulView
from kgents.memory.attachment import Attachment, attach_home, attaches
from kgents.memory.endpoint import ServerGoneError
from kgents.memory.factory import open_memory

T = TypeVar("T")
log = logging.getLogger("kgents.memory")


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
        if not attaches(self._settings):
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

    # -- the face, call for call ---------------------------------------------------------------------------------
    def remember(
        self,
        content: str,
        *,
        type: EntryType | str = DEFAULT_TYPE,
        tags: Sequence[str] = (),
        confidence: float = 0.5,
        observed_at: datetime | None = None,
        evidence: Sequence[str] = (),
        affinities: Mapping[str, float] | None = None,
        entry_id: uuid.UUID | None = None,
    ) -> GardenEntry:
        return self._call(
            lambda m: m.remember(
                content,
                type=type,
                tags=tags,
                confidence=confidence,
                observed_at=observed_at,
                evidence=evidence,
                affinities=affinities,
                entry_id=entry_id,
            )
        )

    def remember_many(self, items: Sequence[MemoryItem]) -> builtins.list[GardenEntry]:
        return self._call(lambda m: m.remember_many(items))

    def recall(
        self,
        query: str,
        *,
        limit: int = 10,
        filters: EntryFilter | None = None,
        min_score: float | None = None,
        explain: bool = False,
        mode: str = "hybrid",
        asked_at: datetime | None = None,
    ) -> builtins.list[RecallHit]:
        return self._call(
            lambda m: m.recall(
                query, limit=limit, filters=filters, min_score=min_score, explain=explain, mode=mode, asked_at=asked_at
            )
        )

    def get(self, entry: EntryRef) -> GardenEntry:
        return self._call(lambda m: m.get(entry))

    def list(
        self, filters: EntryFilter | None = None, *, order_by: str = "confidence", limit: int = 100, offset: int = 0
    ) -> builtins.list[GardenEntry]:
        return self._call(lambda m: m.list(filters, order_by=order_by, limit=limit, offset=offset))

    def update(self, entry: EntryRef, **fields: Any) -> GardenEntry:
        return self._call(lambda m: m.update(entry, **fields))

    def nurture(
        self, entry: EntryRef, *, evidence: str | None = None, delta: float = 0.05, confidence: float | None = None
    ) -> GardenEntry:
        return self._call(lambda m: m.nurture(entry, evidence=evidence, delta=delta, confidence=confidence))

    def forget(self, entry: EntryRef) -> None:
        self._call(lambda m: m.forget(entry))

    def reassess(self, entry: EntryRef, *, confidence: float, evidence: str | None = None) -> GardenEntry:
        return self._call(lambda m: m.reassess(entry, confidence=confidence, evidence=evidence))

    def compost(
        self, entry: EntryRef, *, successor: EntryRef | None = None, evidence: str | None = None
    ) -> GardenEntry:
        return self._call(lambda m: m.compost(entry, successor=successor, evidence=evidence))

    def history(self, entry: EntryRef) -> builtins.list[AuditRecord]:
        return self._call(lambda m: m.history(entry))

    def soul(self) -> SoulView:
        return self._call(lambda m: m.soul())

    def set_mode(self, mode: str) -> SoulView:
        return self._call(lambda m: m.set_mode(mode))

    def nudge(self, shifts: Mapping[str, float]) -> SoulView:
        return self._call(lambda m: m.nudge(shifts))

    def record_interaction(self, tokens: int = 0) -> SoulView:
        return self._call(lambda m: m.record_interaction(tokens))

    def status(self) -> dict[str, Any]:
        return self._call(lambda m: m.status())

    def build_index(self, *, now: bool = True, wait_s: float | None = None) -> dict[str, Any] | None:
        return self._call(lambda m: m.build_index(now=now, wait_s=wait_s))

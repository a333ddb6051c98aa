"""`SoulService`: session state of one persona's souls, fast from the Spark and safe in the anchor.

Reads go cache → snapshot → create. A cached state is served only when it is at the snapshot's revision (read
alongside it, one primary-key lookup): a lost cache write, another process's save or a forgotten soul never serves
an older state. A miss in a shared cache (expired, flushed or restarted Redis), an unavailable Spark or unreadable
cache data falls through to the snapshot with a warning and re-warms the cache. Writes go to the snapshot first, by
compare-and-set on the revision, then to the cache, so the Spark is never the only copy and a Spark outage costs
speed, never data. Mode changes are published to the other instances after they are durable, whatever the cache did.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from kgents.clock import utcnow
from kgents.errors import BackendUnavailableError, ConflictError, ValidationError
from kgents.soul.metrics import OpTimer, ReflexMetrics, reflex_metrics
from kgents.soul.model import DialogueMode, SoulDataError, SoulState, check_soul_id, parse_mode
from kgents.soul.snapshot import SnapshotStore
from kgents.soul.spark import ModeChange, SparkStore

log = logging.getLogger("kgents.soul")

DEFAULT_TTL_S = 24 * 3600.0
MAX_CAS_ATTEMPTS = 32


class RecoverySource(StrEnum):
    CACHE = "cache"
    SNAPSHOT = "snapshot"
    NEW = "new"


@dataclass(frozen=True, slots=True)
class Recovery:
    """A soul as found: the state, where it came from, how long that took, what went wrong on the way."""

    state: SoulState
    source: RecoverySource
    elapsed_ms: float
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source.value,
            "elapsed_ms": round(self.elapsed_ms, 3),
            "warnings": list(self.warnings),
            "state": self.state.to_dict(),
        }


class SoulService:
    """The souls of one persona: no call here can read or change another persona's souls."""

    def __init__(
        self, spark: SparkStore, snapshots: SnapshotStore, persona: str, *, ttl_s: float = DEFAULT_TTL_S
    ) -> None:
        if not ttl_s > 0:
            raise ValidationError(f"the soul cache TTL must be > 0 seconds (got {ttl_s!r})")
        self.spark = spark
        self.snapshots = snapshots
        self.persona = persona
        self.ttl_s = ttl_s
        self.timer = OpTimer()

    # -- the Spark, tolerated when down (it pauses itself after a failure: see `Breaker`) ---------------------
    async def _cache_get(self, soul_id: str) -> tuple[bool, str | None]:
        """(whether the Spark answered, the cached JSON or None)."""
        start = time.perf_counter()
        try:
            raw = await self.spark.get(self.persona, soul_id)
        except BackendUnavailableError:
            return False, None
        self.timer.record((time.perf_counter() - start) * 1000)
        return True, raw

    async def _cache_put(self, state: SoulState) -> None:
        start = time.perf_counter()
        try:
            await self.spark.put(self.persona, state.soul_id, state.to_json(), state.revision, self.ttl_s)
        except BackendUnavailableError:
            return  # readers check the revision against the snapshot: a lost write costs speed, not correctness
        self.timer.record((time.perf_counter() - start) * 1000)

    async def _cache_drop(self, soul_id: str) -> None:
        with contextlib.suppress(BackendUnavailableError):
            await self.spark.delete(self.persona, soul_id)

    async def _checked(self, soul_id: str, raw: str, warnings: list[str]) -> SoulState | None:
        """The cached state if it is at the snapshot's revision; else None (the reason, if worth one, in `warnings`).

        The revision is read after the cache: a save acknowledged before this read began is at least that revision.
        """
        try:
            cached = self._own(SoulState.from_json(raw), soul_id)
        except SoulDataError as exc:
            _warn(warnings, f"soul {soul_id}: cached state is unreadable ({exc}); recovered from the snapshot")
            await self._cache_drop(soul_id)  # its revision field cannot be trusted to guard the re-warm
            return None
        revision = await self.snapshots.revision(self.persona, soul_id)
        if cached.revision == revision:
            return cached
        if revision is None or cached.revision > revision:  # forgotten (and maybe re-created) elsewhere
            await self._cache_drop(soul_id)
        elif self.spark.shared:  # a lost cache write, or one still on its way from a concurrent save: re-warmed
            warnings.append(f"soul {soul_id}: the cache held revision {cached.revision}, the snapshot {revision}")
            log.info("%s", warnings[-1])
        return None

    # -- reading ---------------------------------------------------------------------------------------------
    async def recover(self, soul_id: str, *, use_cache: bool = True) -> Recovery:
        """The soul from the cache, else the snapshot (re-warming the cache), else a new soul (saved)."""
        check_soul_id(soul_id)
        start = time.perf_counter()
        warnings: list[str] = []
        answered, raw = await self._cache_get(soul_id) if use_cache else (False, None)
        if raw is not None:
            cached = await self._checked(soul_id, raw, warnings)
            if cached is not None:
                self.timer.hits += 1
                return Recovery(cached, RecoverySource.CACHE, _since(start))
        if use_cache:
            self.timer.misses += 1
        stored = await self._read_snapshot(soul_id)
        if stored is not None:
            if use_cache and raw is None and self.spark.shared:  # expired, flushed, restarted, or the Spark is away
                warnings.append(miss_note(soul_id, answered))
                if answered:  # an unavailable Spark has said so once already
                    log.warning("%s", warnings[-1])
            await self._cache_put(stored)
            return Recovery(stored, RecoverySource.SNAPSHOT, _since(start), tuple(warnings))
        fresh = SoulState(soul_id=soul_id, persona=self.persona)
        created = await self._write(fresh)
        if created is None:  # another instance created it first: theirs wins
            stored = await self._read_snapshot(soul_id)
            if stored is None:
                raise ConflictError(f"soul {soul_id} was created and removed concurrently; try again")
            await self._cache_put(stored)
            return Recovery(stored, RecoverySource.SNAPSHOT, _since(start), tuple(warnings))
        return Recovery(created, RecoverySource.NEW, _since(start), tuple(warnings))

    async def load(self, soul_id: str) -> SoulState:
        return (await self.recover(soul_id)).state

    async def _read_snapshot(self, soul_id: str) -> SoulState | None:
        raw = await self.snapshots.get(self.persona, soul_id)
        if raw is None:
            return None
        try:
            return self._own(SoulState.from_json(raw), soul_id)
        except SoulDataError as exc:
            raise SoulDataError(f"the snapshot of soul {soul_id} is unreadable: {exc}") from None

    def _own(self, state: SoulState, soul_id: str) -> SoulState:
        """Reject data stored under this soul's key that names another soul or persona."""
        if state.soul_id != soul_id or state.persona != self.persona:
            raise SoulDataError(
                f"stored data belongs to soul {state.soul_id!r} of persona {state.persona!r},"
                f" not {soul_id!r} of {self.persona!r}"
            )
        return state

    # -- writing ---------------------------------------------------------------------------------------------
    async def _write(self, state: SoulState) -> SoulState | None:
        """Snapshot first (compare-and-set on the revision), then the cache; None if another writer won."""
        if state.persona != self.persona:
            raise ValidationError(f"soul {state.soul_id} belongs to persona {state.persona!r}, not {self.persona!r}")
        saved = state.evolve(revision=state.revision + 1, updated_at=utcnow())
        landed = await self.snapshots.put(
            self.persona, saved.soul_id, saved.revision, saved.to_json(), expected_revision=state.revision
        )
        if not landed:
            return None
        await self._cache_put(saved)
        return saved

    async def save(self, state: SoulState) -> SoulState:
        """Save a state read at `state.revision`; ConflictError if another instance saved since."""
        saved = await self._write(state)
        if saved is None:
            raise ConflictError(
                f"soul {state.soul_id} changed in another instance since revision {state.revision}; reload it"
            )
        return saved

    async def update(self, soul_id: str, change: Callable[[SoulState], SoulState]) -> tuple[SoulState, SoulState]:
        """Apply `change` to the current state and save it, retrying on concurrent writers."""
        use_cache = True
        for _ in range(MAX_CAS_ATTEMPTS):
            current = (await self.recover(soul_id, use_cache=use_cache)).state
            saved = await self._write(change(current))
            if saved is not None:
                return current, saved
            use_cache = False  # another writer won between our read and our write: read the snapshot itself
        raise ConflictError(f"soul {soul_id} kept changing under us; gave up after {MAX_CAS_ATTEMPTS} tries")

    async def set_mode(self, soul_id: str, mode: DialogueMode | str) -> SoulState:
        """Change the dialogue mode and, once durable, tell the other instances."""
        target = parse_mode(mode)
        before, after = await self.update(soul_id, lambda s: s.with_mode(target))
        if before.mode is not after.mode:
            await self.announce(after, before.mode)
        return after

    async def announce(self, state: SoulState, previous: DialogueMode | None) -> int:
        """Publish the state's mode to other instances; 0 listeners (or a Spark outage) is not an error."""
        change = ModeChange(
            persona=self.persona,
            soul_id=state.soul_id,
            mode=state.mode,
            previous=previous,
            revision=state.revision,
            instance_id=self.spark.instance_id,
            sent_ns=time.time_ns(),
        )
        try:
            return await self.spark.publish(change)
        except BackendUnavailableError:
            return 0  # the Spark sends it once the server answers again (a watcher also re-reads the snapshot)

    async def set_eigenvector(
        self, soul_id: str, axis: str, value: float | None = None, confidence: float | None = None
    ) -> SoulState:
        if value is None and confidence is None:
            raise ValidationError("give a value, a confidence, or both")
        return (await self.update(soul_id, lambda s: s.with_eigenvector(axis, value, confidence)))[1]

    async def record_interaction(self, soul_id: str, tokens: int = 0) -> SoulState:
        return (await self.update(soul_id, lambda s: s.with_interaction(tokens)))[1]

    async def new_session(self, soul_id: str) -> SoulState:
        return (await self.update(soul_id, lambda s: s.with_new_session()))[1]

    async def forget(self, soul_id: str) -> bool:
        """Remove the soul from the snapshot and the cache; True if it existed."""
        check_soul_id(soul_id)
        existed = await self.snapshots.delete(self.persona, soul_id)
        await self._cache_drop(soul_id)
        return existed

    async def souls(self) -> list[tuple[str, int]]:
        return await self.snapshots.souls(self.persona)

    async def cache_ttl(self, soul_id: str) -> float | None:
        try:
            return await self.spark.ttl(self.persona, soul_id)
        except BackendUnavailableError:
            return None

    # -- watching and metrics --------------------------------------------------------------------------------
    async def watch(self, soul_id: str) -> AsyncIterator[ModeChange]:
        """Mode changes of this soul by other instances (Redis only; embedded raises ConfigError).

        After the Spark reconnects, the snapshot is read again and a change missed during the gap is reported
        with instance id `resync`: a watcher never stays on a stale mode.
        """
        check_soul_id(soul_id)
        last = await self._mode_in_snapshot(soul_id)
        changes = self.spark.subscribe(self.persona, soul_id)
        try:
            async for change in changes:
                if change is None:
                    current = await self._mode_in_snapshot(soul_id)
                    if current is None or current[0] is (last[0] if last else None):
                        continue
                    change = ModeChange(
                        self.persona,
                        soul_id,
                        current[0],
                        last[0] if last else None,
                        current[1],
                        "resync",
                        time.time_ns(),
                    )
                last = (change.mode, change.revision)
                yield change
        finally:
            await changes.aclose()  # type: ignore[attr-defined]

    async def _mode_in_snapshot(self, soul_id: str) -> tuple[DialogueMode, int] | None:
        try:
            state = await self._read_snapshot(soul_id)
        except BackendUnavailableError as exc:
            log.warning("soul: cannot re-read soul %s after a Spark gap: %s", soul_id, exc)
            return None
        return None if state is None else (state.mode, state.revision)

    async def metrics(self) -> ReflexMetrics:
        return reflex_metrics(self.timer, await self.spark.stats())

    async def close(self) -> None:
        try:
            await self.spark.close()
        finally:
            await self.snapshots.close()


def miss_note(soul_id: str, answered: bool) -> str:
    """Why a soul that has a snapshot was not served from a shared cache."""
    if not answered:
        return f"soul {soul_id}: the spark is unavailable; recovered from the snapshot"
    return f"soul {soul_id}: not in the cache (expired, or Redis was flushed or restarted); recovered from the snapshot"


def _warn(warnings: list[str], message: str) -> None:
    warnings.append(message)
    log.warning("%s", message)


def _since(start: float) -> float:
    return (time.perf_counter() - start) * 1000

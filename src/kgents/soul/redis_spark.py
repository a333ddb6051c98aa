"""The Redis Spark: soul state under namespaced keys with a TTL, and mode changes over pub/sub.

Works with Redis 6+ and Valkey (plain GET/SET/EVAL/PUBLISH). Every process opens its own instance id, keeps an
expiring heartbeat (so `connected_instances` counts live K-gents) and ignores its own messages.
Server failures surface as `BackendUnavailableError` naming KGENTS_REDIS_URL (redacted), after at most about half
a second (a stalled server is not waited for); then a `Breaker` keeps calls off the server for a pause, with one
warning line per outage. Subscriptions survive a restarted server by reconnecting with backoff; a mode change that
could not be published is sent once the server answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from kgents.breaker import Breaker, BreakerState
from kgents.config import redact_url
from kgents.errors import BackendUnavailableError
from kgents.soul.spark import (
    HEARTBEAT_INTERVAL_S,
    HEARTBEAT_TTL_S,
    Backoff,
    ModeChange,
    SparkPaused,
    SparkStats,
    instances_key,
    mode_channel,
    new_instance_id,
    persona_pattern,
    soul_key,
)

log = logging.getLogger("kgents.soul")
T = TypeVar("T")

CONNECT_TIMEOUT_S = 0.5
COMMAND_TIMEOUT_S = 0.5
"""Redis answers in well under a millisecond; a server silent for this long is stalled (never retried)."""
PAUSE_S = 1.0
MAX_PAUSE_S = 8.0
"""The breaker: after a failure, no call reaches the server for PAUSE_S, doubling up to MAX_PAUSE_S while the
trial made after each pause fails."""

# SET only if no newer revision is cached; unreadable cached data is overwritten (the snapshot is the truth).
_GUARDED_SET = """
local current = redis.call('GET', KEYS[1])
if current then
  local ok, doc = pcall(cjson.decode, current)
  if ok and type(doc) == 'table' then
    local rev = tonumber(doc['revision'])
    if rev and rev > tonumber(ARGV[2]) then return 0 end
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
"""

# Heartbeats on the server's clock (no skew between hosts): drop the expired, (re)arm this one, count the live.
_BEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return redis.call('ZCARD', KEYS[1])
"""
_LIVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], now, '+inf')
"""

_TRANSIENT = (RedisConnectionError, RedisTimeoutError, OSError)


class RedisSpark:
    """A Spark on one Redis database; `prefix` separates deployments (and test runs) sharing a server."""

    backend = "redis"
    supports_pubsub = True
    shared = True

    def __init__(self, url: str, prefix: str, *, heartbeat: bool = True) -> None:
        self.url = url
        self.prefix = prefix
        self._instance_id = new_instance_id()
        self._redis: Any = aioredis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=COMMAND_TIMEOUT_S,
            health_check_interval=10,
            # one quick retry for a connection a restarted server dropped; a timeout is not retried
            retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), retries=1, supported_errors=(RedisConnectionError,)),
            client_name="kgents-spark",
        )
        self._guarded_set = self._redis.register_script(_GUARDED_SET)
        self._beat_script = self._redis.register_script(_BEAT)
        self._live_script = self._redis.register_script(_LIVE)
        self._heartbeat_enabled = heartbeat
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._breaker = Breaker(failure_threshold=1, cooldown_s=PAUSE_S, max_cooldown_s=MAX_PAUSE_S)
        self._refused = False
        self._pending: dict[str, ModeChange] = {}
        self._retry_task: asyncio.Task[None] | None = None
        self.errors = 0

    @classmethod
    async def open(cls, url: str, prefix: str, *, heartbeat: bool = True, strict: bool = True) -> RedisSpark:
        """Connect and start the heartbeat; with `strict`, an unreachable server is an error right away."""
        spark = cls(url, prefix, heartbeat=heartbeat)
        try:
            await spark._call(spark._redis.ping, warn=not strict)
            if heartbeat:
                await spark._beat()
        except BackendUnavailableError:
            if strict:
                await spark.close()
                raise
        if heartbeat:
            spark._heartbeat_task = asyncio.create_task(spark._heartbeat_loop(), name="kgents-spark-heartbeat")
        return spark

    @property
    def instance_id(self) -> str:
        return self._instance_id

    @property
    def client(self) -> Any:
        """The redis.asyncio client (tests and bench only)."""
        return self._redis

    async def _call(self, fn: Callable[..., Awaitable[T]], *args: Any, warn: bool = True, **kwargs: Any) -> T:
        """One call to the server through the breaker; `warn`: say so (once per outage) when it fails."""
        if not self._breaker.allow(time.monotonic()):
            raise SparkPaused(f"KGENTS_REDIS_URL: Redis at {redact_url(self.url)} failed a moment ago; not retried yet")
        trial = self._breaker.state is BreakerState.HALF_OPEN
        try:
            result = await fn(*args, **kwargs)
        except (*_TRANSIENT, RedisError) as exc:
            self.errors += 1
            if isinstance(exc, _TRANSIENT):
                first = self._breaker.record_failure(time.monotonic())
            else:  # an error reply (OOM, …): the server is there, so no pause (and no verdict); said once
                first, self._refused = not self._refused, True
            if warn and first:
                log.warning(
                    "spark: Redis at %s failed (%s); working from the snapshot", redact_url(self.url), _reason(exc)
                )
            raise BackendUnavailableError(self._describe(exc)) from None
        else:
            recovered = self._breaker.record_success()
        finally:
            if trial:  # no verdict recorded (an error reply, a cancelled call): the next caller makes the trial
                self._breaker.release()
        if recovered:
            self._refused = False
            log.info("spark: Redis at %s answers again", redact_url(self.url))
            await self._send_pending()
        return result

    def _describe(self, exc: BaseException) -> str:
        return f"KGENTS_REDIS_URL: Redis at {redact_url(self.url)} failed: {_reason(exc)}"

    # -- state -----------------------------------------------------------------------------------------------
    async def get(self, persona: str, soul_id: str) -> str | None:
        value = await self._call(self._redis.get, soul_key(self.prefix, persona, soul_id))
        return None if value is None else str(value)

    async def put(self, persona: str, soul_id: str, state_json: str, revision: int, ttl_s: float) -> bool:
        key = soul_key(self.prefix, persona, soul_id)
        written = await self._call(self._guarded_set, keys=[key], args=[state_json, revision, _ms(ttl_s)])
        return bool(written)

    async def put_raw(self, persona: str, soul_id: str, data: str, ttl_s: float) -> None:
        await self._call(self._redis.set, soul_key(self.prefix, persona, soul_id), data, px=_ms(ttl_s))

    async def delete(self, persona: str, soul_id: str) -> bool:
        return bool(await self._call(self._redis.delete, soul_key(self.prefix, persona, soul_id)))

    async def forget_persona(self, persona: str) -> int:
        async def work() -> int:
            keys = [key async for key in self._redis.scan_iter(match=persona_pattern(self.prefix, persona), count=500)]
            return int(await self._redis.delete(*keys)) if keys else 0

        return await self._call(work)

    async def ttl(self, persona: str, soul_id: str) -> float | None:
        left = int(await self._call(self._redis.pttl, soul_key(self.prefix, persona, soul_id)))
        return None if left < 0 else left / 1000

    # -- pub/sub ---------------------------------------------------------------------------------------------
    async def publish(self, change: ModeChange) -> int:
        channel = mode_channel(self.prefix, change.persona, change.soul_id)
        try:
            received = int(await self._call(self._redis.publish, channel, change.to_json()))
        except BackendUnavailableError:
            if self._breaker.state is not BreakerState.CLOSED:  # the server is away: send the latest change later
                self._pending[channel] = change
                if self._retry_task is None or self._retry_task.done():
                    self._retry_task = asyncio.create_task(self._retry_pending(), name="kgents-spark-retry")
            else:  # refused by a server that answers: trying again would not help
                self._pending.pop(channel, None)
            raise
        if self._pending.get(channel) is not change:
            self._pending.pop(channel, None)  # superseded by this newer one
        return received

    async def _retry_pending(self) -> None:
        """Send the waiting mode changes once the breaker's pause is over (each try probes the server)."""
        while self._pending:
            await asyncio.sleep(max(0.01, self._breaker.retry_at - time.monotonic()))
            await self._send_pending()

    async def _send_pending(self) -> None:
        for channel, change in list(self._pending.items()):
            if self._pending.get(channel) is not change:
                continue
            with contextlib.suppress(BackendUnavailableError):
                await self.publish(change)

    async def subscribe(self, persona: str, soul_id: str) -> AsyncIterator[ModeChange | None]:
        channel = mode_channel(self.prefix, persona, soul_id)
        backoff = Backoff()
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel)
                if backoff.attempt:
                    log.warning("spark: resubscribed to mode changes of soul %s", soul_id)
                    backoff.reset()
                    yield None  # a gap: changes published while we were away are gone
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None or message.get("type") != "message":
                        continue
                    change = ModeChange.from_json(message["data"])
                    if change is None:
                        log.warning("spark: ignored a malformed message on %s", channel)
                        continue
                    if change.instance_id == self._instance_id:
                        continue
                    if change.persona != persona or change.soul_id != soul_id:
                        continue
                    yield change
            except _TRANSIENT as exc:
                delay = backoff.next_delay()
                log.warning(
                    "spark: lost Redis at %s (%s); reconnecting in %.2f s",
                    redact_url(self.url),
                    type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def listeners(self, persona: str, soul_id: str) -> int:
        """How many subscriptions the soul's channel has right now (tests wait on it before publishing)."""
        counts = await self._call(self._redis.pubsub_numsub, mode_channel(self.prefix, persona, soul_id))
        return int(counts[0][1]) if counts else 0

    # -- liveness and stats ----------------------------------------------------------------------------------
    async def _beat(self) -> None:
        key = instances_key(self.prefix)
        await self._call(self._beat_script, keys=[key], args=[self._instance_id, _ms(HEARTBEAT_TTL_S)])

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_INTERVAL_S)
            try:
                await self._beat()
            except BackendUnavailableError as exc:
                log.debug("spark: heartbeat failed: %s", exc)

    async def instances(self) -> int:
        """K-gent processes whose heartbeat has not expired (this one included while open)."""
        return int(await self._call(self._live_script, keys=[instances_key(self.prefix)], args=[]))

    async def stats(self) -> SparkStats:
        try:
            info = await self._call(self._redis.info)
            instances = await self.instances()
        except BackendUnavailableError:
            return SparkStats(self.backend, None, None, None, None, 0, reachable=False, errors=self.errors)
        return SparkStats(
            backend=self.backend,
            used_memory_bytes=_int(info.get("used_memory")),
            max_memory_bytes=_int(info.get("maxmemory")),
            ops_per_second=_float(info.get("instantaneous_ops_per_sec")),
            connected_clients=_int(info.get("connected_clients")),
            connected_instances=instances,
            errors=self.errors,
            keyspace_hits=_int(info.get("keyspace_hits")),
            keyspace_misses=_int(info.get("keyspace_misses")),
        )

    async def close(self) -> None:
        for task in (self._heartbeat_task, self._retry_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._heartbeat_task = self._retry_task = None
        with contextlib.suppress(BackendUnavailableError):  # through the breaker: a down server is not waited for
            if self._pending:
                await self._send_pending()
            if self._heartbeat_enabled:
                await self._call(self._redis.zrem, instances_key(self.prefix), self._instance_id, warn=False)
        with contextlib.suppress(Exception):
            await self._redis.aclose()


def _reason(exc: BaseException) -> str:
    return (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)[:200]


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _int(value: object) -> int | None:
    try:
        return None if value is None else int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _float(value: object) -> float | None:
    try:
        return None if value is None else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None

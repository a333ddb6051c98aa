"""Opening the soul: the Spark the settings name and the anchor's snapshot, a `SoulService` over them, and the
recovered soul (`open_soul`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import TracebackType

from kgents.config import Settings
from kgents.soul.embedded_spark import EmbeddedSpark
from kgents.soul.model import SoulState
from kgents.soul.service import Recovery, SoulService
from kgents.soul.snapshot import open_snapshots
from kgents.soul.spark import SparkStore


async def open_spark(settings: Settings, *, strict: bool = False) -> SparkStore:
    """Redis when KGENTS_REDIS_URL is set (`strict`: unreachable is an error), else the embedded Spark."""
    if settings.redis_url:
        from kgents.soul.redis_spark import RedisSpark

        return await RedisSpark.open(settings.redis_url, settings.spark_prefix, strict=strict)
    return EmbeddedSpark()


async def open_service(settings: Settings, *, strict_spark: bool = False) -> SoulService:
    """The soul service of the settings' persona; close it when done."""
    snapshots = await open_snapshots(settings)
    try:
        spark = await open_spark(settings, strict=strict_spark)
    except BaseException:
        await snapshots.close()
        raise
    return SoulService(spark, snapshots, settings.persona, ttl_s=settings.soul_ttl_seconds)


@dataclass(slots=True)
class SoulSession:
    """An open service and the recovered soul; `async with` closes the connections."""

    service: SoulService
    recovery: Recovery
    connect_ms: float

    @property
    def state(self) -> SoulState:
        return self.recovery.state

    async def close(self) -> None:
        await self.service.close()

    async def __aenter__(self) -> SoulSession:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


async def open_soul(settings: Settings, soul_id: str | None = None, *, strict_spark: bool = False) -> SoulSession:
    """Connect and recover `soul_id` (default: the persona's own soul): cache, else snapshot, else new."""
    start = time.perf_counter()
    service = await open_service(settings, strict_spark=strict_spark)
    connected = (time.perf_counter() - start) * 1000
    try:
        recovery = await service.recover(soul_id or settings.persona)
    except BaseException:
        await service.close()
        raise
    return SoulSession(service, recovery, connected)

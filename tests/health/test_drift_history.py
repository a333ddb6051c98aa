"""The drift history (migration 0010) on both anchors: appended by status collection and by a running relay,
bounded in size, read back oldest first."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from kgents.clock import utcnow
from kgents.config import Settings
from kgents.garden.store import open_store
from kgents.synapse.drift import DriftSample, append_sample, read_history
from tests.health.support import plant
from tests.helpers import wait_until


async def test_history_is_bounded_and_ordered(anchor_settings: Settings) -> None:
    store = await open_store(anchor_settings)
    try:
        start = utcnow()
        for i in range(12):
            sample = DriftSample(start + timedelta(seconds=i), "test", coherency=i / 12, matched=i, pending=0)
            await append_sample(store.anchor, sample, limit=5)
        history = await read_history(store.anchor, 100)
        assert [s.matched for s in history] == [7, 8, 9, 10, 11], "only the newest 5 are kept, oldest first"
        assert history[-1].coherency == 11 / 12 and history[-1].source == "test"
        assert history[-1].measured_at == start + timedelta(seconds=11)
        assert [s.matched for s in await read_history(store.anchor, 2)] == [10, 11]
    finally:
        await store.close()


async def test_a_running_relay_appends_its_measurement(anchor_settings: Settings) -> None:
    from kgents.synapse.relay import RelayConfig
    from kgents.synapse.runtime import open_synapse

    await plant(anchor_settings)
    synapse = await open_synapse(anchor_settings)
    relay = synapse.relay(RelayConfig(poll_interval_s=0.05, idle_poll_s=0.02, coherency_interval_s=0.1))
    running = asyncio.create_task(relay.run())
    try:

        async def relay_samples() -> list[DriftSample]:
            return [s for s in await read_history(synapse.store.anchor, 50) if s.source == "relay"]

        samples = await wait_until(relay_samples, what="a relay sample")
        assert samples[0].coherency is not None and samples[0].pending is not None
        first = samples[0].measured_at

        async def measured_again() -> bool:
            report = relay.stats.coherency or {}
            return datetime.fromisoformat(str(report.get("measured_at", first.isoformat()))) > first

        await wait_until(measured_again, what="a second measurement")
        assert len(await relay_samples()) == 1, "a relay measuring every 0.1 s appends at most every 30 s"
    finally:
        relay.stop()
        await running
        await synapse.close()

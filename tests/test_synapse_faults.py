"""A collection gone from under the relay (issue 7, item 5): an index fault, not the anchor's; the circuit opens,
the error names the collection and the command that repairs it, and that command does."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from kgents.breaker import BreakerState
from kgents.config import Settings
from kgents.errors import NotFoundError
from kgents.synapse.coherency import reconcile
from kgents.synapse.faults import MissingCollectionError
from kgents.synapse.runtime import open_synapse
from kgents.synapse.state import collection_prefix, ensure_state
from tests.helpers import CliHarness as Cli
from tests.helpers import wait_until
from tests.synapse_env import INDEX_KINDS, Env, open_env


@pytest.fixture(params=INDEX_KINDS)
async def env(anchor_settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    async with open_env(anchor_settings, request.param) as opened:
        yield opened


async def _value(value: object) -> object:
    return value


async def test_a_missing_collection_opens_the_circuit_and_names_the_repair(env: Env) -> None:
    relay = env.start()
    g = env.garden()
    for i in range(5):
        await g.plant(f"a memory kept before the drop {i}", "VALUE")
    await wait_until(env.coherency, lambda r: r.coherent and r.matched == 5, what="indexed")
    col = env.state.active.collection
    await env.index.drop_collection(col)
    late = await g.plant("planted after the collection was dropped", "VALUE")
    await wait_until(lambda: _value(relay.breaker.state), lambda s: s is BreakerState.OPEN, what="circuit OPEN")
    error = relay.stats.last_error or ""
    assert error.startswith("index:") and col in error and "kgents synapse reconcile" in error, error
    assert relay.stats.processed == 5 and await env.queue.queue_depth(10) == 1, "the late event waits"
    assert await env.queue.dead_letter_count() == 0, "not the entry's fault"
    with pytest.raises(MissingCollectionError, match="kgents synapse reconcile"):
        await ensure_state(env.queue, env.index, env.embedder, "garden")  # nothing recreated behind our back
    # what `kgents synapse reconcile` does: recreate the collection, refill it from the anchor
    schema = env.settings.postgres_schema if env.settings.postgres_url else None
    state = await ensure_state(
        env.queue, env.index, env.embedder, collection_prefix(env.queue.backend, schema), recreate=True
    )
    assert state.active.collection == col
    report = await reconcile(env.queue, env.index, env.resolve, state)
    assert report.before.missing >= 5 and report.after.coherent
    await wait_until(env.coherency, lambda r: r.coherent and r.matched == 6, what="everything back, late one too")
    await wait_until(lambda: _value(relay.breaker.state), lambda s: s is BreakerState.CLOSED, what="circuit CLOSED")
    assert late.id in await env.index.versions(col)


@pytest.fixture
def cli(anchor_settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(anchor_settings, capsys, monkeypatch)


def test_status_says_to_reconcile_and_reconcile_refills(cli: Cli, anchor_settings: Settings) -> None:
    for text in ("I prefer minimal code", "the weather is sunny today", "my cat sleeps all afternoon"):
        assert cli("garden", "plant", text)[0] == 0
    assert cli("synapse", "run", "--once")[0] == 0

    async def drop() -> str:
        synapse = await open_synapse(anchor_settings)
        try:
            await synapse.index.drop_collection(synapse.state.active.collection)
            return synapse.state.active.collection
        finally:
            await synapse.close()

    col = asyncio.run(drop())
    code, out, err = cli("synapse", "status")
    assert code == 2, err
    assert f"vector collection {col!r} is missing" in out and "run `kgents synapse reconcile`" in out
    code, out, _ = cli("synapse", "status", "--json")
    shown = json.loads(out)
    assert code == 2 and shown["status"] == "CRITICAL" and col in shown["fault"]
    code, _, err = cli("garden", "search", "keep code small")
    assert code == 66 and len(err.strip().splitlines()) == 1 and "kgents synapse reconcile" in err
    code, out, err = cli("synapse", "reconcile", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["before"]["missing"] == 3 and report["after"]["coherency_with_truth"] == 1.0
    code, out, err = cli("synapse", "status", "--json")
    assert code == 0 and json.loads(out)["fault"] is None, err
    code, out, _ = cli("garden", "search", "keep code small and simple", "--json")
    assert json.loads(out)["hits"][0]["content"] == "I prefer minimal code"


def test_missing_collection_is_a_not_found_error() -> None:
    assert issubclass(MissingCollectionError, NotFoundError)

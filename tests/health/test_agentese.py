"""AGENTESE: path parsing, resolution, errors with the nearest paths, and the handlers over a real garden."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgents.agentese.handlers import REGISTRY
from kgents.agentese.invoke import invoke, read_health
from kgents.agentese.resolver import AgentContext, AgentPath, Args, UnknownPathError
from kgents.cli.exit_codes import ExitCode
from kgents.config import Settings
from kgents.errors import ValidationError
from kgents.health.model import Level, PartHealth
from tests.health.support import drain, plant, relaxed
from tests.helpers import CliHarness

EXPECTED = {
    *(f"self.vitals.triad.{a}" for a in ("health", "durability", "resonance", "reflex", "synapse", "coherency")),
    *(f"world.database.{h}.{a}" for h in ("garden", "outbox", "index") for a in ("count", "search", "status")),
    *(f"time.drift.{a}" for a in ("coherency", "lag", "history")),
}


def test_every_path_of_the_issue_is_registered() -> None:
    assert {r.path for r in REGISTRY.paths()} == EXPECTED


def test_path_parsing() -> None:
    assert AgentPath.parse("self.vitals.triad.health") == AgentPath("self", "vitals.triad", "health")
    assert str(AgentPath.parse("time.drift.lag")) == "time.drift.lag"
    for bad in ("self.health", "Self.vitals.health", "self..x", "space.x.y", "", "self.vitals.triad.health;drop"):
        with pytest.raises(ValidationError):
            AgentPath.parse(bad)


def test_unknown_paths_list_the_nearest() -> None:
    with pytest.raises(UnknownPathError) as typo:
        REGISTRY.resolve("self.vitals.triad.helth")
    assert typo.value.suggestions[0] == "self.vitals.triad.health"
    with pytest.raises(UnknownPathError) as aspect:
        REGISTRY.resolve("world.database.garden.delete")
    assert set(aspect.value.suggestions) <= EXPECTED and aspect.value.suggestions
    with pytest.raises(UnknownPathError) as shape:
        REGISTRY.resolve("world.databse.index")  # not even a well-formed registered path: still suggestions
    assert "world.database.index." in " ".join(shape.value.suggestions)


def test_args() -> None:
    args = Args.parse(["minimal", "code", "limit=3"])
    assert args.text == "minimal code" and args.integer("limit", 10) == 3
    with pytest.raises(ValidationError):
        Args.parse(["limit=lots"]).integer("limit", 10)
    with pytest.raises(ValidationError):
        Args.parse(["limit=0"]).integer("limit", 10)


async def test_handlers_over_a_real_garden(anchor_settings: Settings) -> None:
    await plant(anchor_settings)
    await drain(anchor_settings)
    ctx = AgentContext(anchor_settings.with_persona("kent"), relaxed(probe_timeout_s=10.0), record="test")
    health = await read_health(ctx)
    assert health.level in (Level.THRIVING, Level.HEALTHY)
    part = await invoke(ctx, "self.vitals.triad.durability")
    assert isinstance(part, PartHealth) and part.name == "durability"
    assert (await invoke(ctx, "self.vitals.triad.coherency"))["coherency_with_truth"] == 1.0
    assert (await invoke(ctx, "world.database.garden.count"))["count"] == 3
    found = await invoke(ctx, "world.database.garden.search", Args.parse(["minimal"]))
    assert [e["content"] for e in found["entries"]] == ["I prefer minimal code"]
    assert (await invoke(ctx, "world.database.garden.status"))["schema_version"] >= 10
    assert (await invoke(ctx, "world.database.outbox.count"))["pending"] == 0
    assert (await invoke(ctx, "world.database.outbox.search"))["events"] == []
    assert (await invoke(ctx, "world.database.outbox.status"))["dead_letters"] == 0
    assert (await invoke(ctx, "world.database.index.count"))["points"] == 3
    hits = await invoke(ctx, "world.database.index.search", Args.parse(["minimal", "code", "limit=1"]))
    assert [h["content"] for h in hits["hits"]] == ["I prefer minimal code"]
    assert (await invoke(ctx, "world.database.index.status"))["points"] == 3
    assert (await invoke(ctx, "time.drift.coherency"))["matched"] == 3
    assert "lag_p95_ms" in await invoke(ctx, "time.drift.lag")
    history = (await invoke(ctx, "time.drift.history", Args.parse(["limit=5"])))["samples"]
    assert len(history) >= 2 and {s["source"] for s in history} >= {"test"}
    with pytest.raises(ValidationError):
        await invoke(ctx, "world.database.index.search")


def test_kgents_invoke(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    cli = CliHarness(Settings(home=tmp_path / "home"), capsys, monkeypatch)
    code, out, err = cli("invoke", "self.vitals.triad.helth")
    assert code == ExitCode.NOT_FOUND and out == ""
    assert err.strip() == (
        "kgents: unknown AGENTESE path 'self.vitals.triad.helth'; did you mean self.vitals.triad.health,"
        " self.vitals.triad.reflex, self.vitals.triad.coherency?"
    )
    code, out, _ = cli("invoke", "world.database.garden.count", "--json")
    assert code == 0 and json.loads(out) == {"persona": "kent", "count": 0}
    code, out, _ = cli("invoke", "--list")
    assert code == 0 and "time.drift.history" in out
    code, out, _ = cli("invoke", "self.vitals.triad.reflex")
    assert code == 0 and "Reflex (embedded):" in out and "HEALTHY" in out
    code, _, err = cli("invoke", "world.database.garden.count", "limit=x", "--json")
    assert code == 0
    code, _, err = cli("invoke", "time.drift.history", "limit=x")
    assert code == ExitCode.DATA_ERROR and "limit must be a whole number" in err


async def test_outbox_search_lists_pending_events(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", persona="kent")
    ids = await plant(settings)
    ctx = AgentContext(settings)
    found = await invoke(ctx, "world.database.outbox.search", Args.parse(["limit=2"]))
    assert [e["entry_id"] for e in found["events"]] == [str(i) for i in ids[:2]]
    assert found["events"][0]["operation"] == "INSERT" and found["events"][0]["entry_version"] == 1
    assert (await invoke(ctx, "world.database.outbox.count"))["pending"] == 3

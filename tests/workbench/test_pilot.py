"""The workbench driven by Textual's pilot over the real collector (AGENTESE on real stores): navigation, a refresh
that never blocks input nor overlaps, an alert on a Redis stopped under it and its recovery, and opening with
Redis stopped or no relay running."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.notifications import Notification
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from kgents.config import Settings
from kgents.health.levels import Thresholds
from kgents.health.model import Level
from kgents.memory.local import AsyncMemory
from kgents.soul import redis_spark
from kgents.workbench.app import WorkbenchApp
from kgents.workbench.detail import DetailScreen
from kgents.workbench.flux import FluxScreen
from kgents.workbench.garden import GardenScreen
from kgents.workbench.help import HelpScreen
from kgents.workbench.loom import LoomScreen
from kgents.workbench.mri import MRIScreen
from kgents.workbench.source import LiveSource
from kgents.workbench.widgets import HealthBar
from tests.health.support import plant, relaxed
from tests.helpers import PG_URL
from tests.soul.conftest import PrivateRedis, free_port

TIMEOUT_S = 1.0
STALL_S = 3.0
"""The probe timeout where a test needs a refresh to stay in flight while it acts."""
DEADLINE_S = 30.0


def thresholds(**changes: float) -> Thresholds:
    return relaxed(probe_timeout_s=TIMEOUT_S, **changes)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[PrivateRedis]:
    folder = tmp_path / "redis"
    folder.mkdir()
    server = PrivateRedis(folder)
    server.start()
    yield server
    server.stop()


async def until(pilot: Pilot[None], condition: object, what: str, deadline_s: float = DEADLINE_S) -> None:
    """Let the app run until `condition()` holds (no fixed sleeps)."""
    assert callable(condition)
    limit = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > limit:
            raise AssertionError(f"not within {deadline_s} s: {what}")
        await pilot.pause(0.05)


def notes_about(app: WorkbenchApp, title: str) -> list[Notification]:
    """The notifications that announce `title` (alone, or as one line of several parts that turned together, as
    happens when a loaded machine also slows another probe)."""
    return [n for n in app._notifications if n.title == title or f"{title}:" in n.message]


def level_of(app: WorkbenchApp, part: str) -> Level | None:
    health = app.state.health
    found = None if health is None else health.part(part)
    return None if found is None else found.level


async def test_navigation_between_every_screen(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    await plant(settings)
    app = WorkbenchApp(LiveSource(settings, thresholds()), interval=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.state.health is not None, "the first refresh")
        assert isinstance(app.screen, FluxScreen)
        for key, screen in (("l", LoomScreen), ("m", MRIScreen), ("g", GardenScreen), ("f", FluxScreen)):
            await pilot.press(key)
            await until(pilot, lambda screen=screen: isinstance(app.screen, screen), f"{key} opens {screen.__name__}")
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.click("#bar-resonance")
        assert isinstance(app.screen, DetailScreen) and app.screen.part == "resonance"
        await pilot.press("escape")
        app.query_one("#bar-durability", HealthBar).focus()
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen) and app.screen.part == "durability"
        await pilot.press("escape")
        assert isinstance(app.screen, FluxScreen)
        await pilot.press("ctrl+p")
        await pilot.press(*"Loom")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, LoomScreen), "the command palette opens Loom")


async def test_refresh_never_blocks_input_nor_overlaps(
    tmp_path: Path, redis_server: PrivateRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Spark that stalls (SIGSTOP) makes every refresh wait for its command timeout (made long here, so the
    refresh is surely still waiting when the key is pressed): keys still answer at once, and refreshes never run
    two at a time."""
    monkeypatch.setattr(redis_spark, "COMMAND_TIMEOUT_S", STALL_S)
    settings = Settings(home=tmp_path / "home", redis_url=redis_server.url)
    app = WorkbenchApp(LiveSource(settings, relaxed(probe_timeout_s=2 * STALL_S)), interval=0.05)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.state.refreshes >= 1, "the first refresh")
        redis_server.pause()
        try:
            # the refresh in flight at the pause may have asked Redis just before it: let it land, so the one
            # caught below started after the pause and waits out the whole probe timeout
            paused_at = app.state.refreshes
            await until(pilot, lambda: app.state.refreshes > paused_at and app.in_flight == 1, "a refresh under way")
            before = app.state.refreshes
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            assert app.in_flight == 1 and app.state.refreshes == before, (
                "the key was handled while the stalled refresh (at least the probe timeout) was still running"
            )
            await pilot.press("escape")
            done = app.state.refreshes
            await until(pilot, lambda: app.state.refreshes >= done + 2, "two more refreshes through the stall")
            assert level_of(app, "reflex") is Level.CRITICAL
        finally:
            redis_server.resume()
        assert app.max_in_flight == 1


@pytest.mark.timeout(60)
async def test_closing_while_a_refresh_waits_on_a_stalled_part(tmp_path: Path, redis_server: PrivateRedis) -> None:
    """Quitting while a refresh is in flight releases its worker: the refresh used to wait for ever on the stopped
    I/O loop, and the test's event loop with it, at its executor shutdown (a CI run hung here)."""
    settings = Settings(home=tmp_path / "home", redis_url=redis_server.url)
    app = WorkbenchApp(LiveSource(settings, thresholds()), interval=0.05)
    redis_server.pause()
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.in_flight == 1, "a refresh waiting on the stalled Spark")
        assert app.state.refreshes == 0, "the app closed before the stalled refresh could finish"
    finally:
        redis_server.resume()


async def test_alert_on_a_stopped_redis_then_recovery(tmp_path: Path, redis_server: PrivateRedis) -> None:
    settings = Settings(home=tmp_path / "home", redis_url=redis_server.url)
    app = WorkbenchApp(LiveSource(settings, thresholds()), interval=0.1, glitch_s=0.3)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: level_of(app, "reflex") not in (None, Level.CRITICAL), "Reflex reachable")
        bar = app.query_one("#bar-reflex", HealthBar)
        assert not bar.has_class("-alert")
        redis_server.stop()
        await until(pilot, lambda: bar.has_class("-glitch"), "the glitch on the fresh alert")
        assert bar.has_class("-alert") and bar.has_class("lv-critical")
        assert "✖ CRITICAL" in str(bar.render())
        await until(pilot, lambda: notes_about(app, "Reflex CRITICAL"), "the notification")
        [note] = notes_about(app, "Reflex CRITICAL")
        assert note.severity == "error" and "Redis" in note.message
        await until(pilot, lambda: not bar.has_class("-glitch"), "the glitch calms down to a lasting colour")
        assert bar.has_class("-alert"), "the colour and badge last while the part is down"
        redis_server.start()  # the same port: the Spark comes back where it was
        await until(pilot, lambda: not bar.has_class("-alert"), "recovery")
        assert any(a.recovered and a.part == "reflex" for a in app.state.alerts)
        await until(
            pilot,
            lambda: any("Reflex recovered" in n.title or "Reflex recovered" in n.message for n in app._notifications),
            "the recovery notification",
        )
        assert app.state.errors["reflex"], "the outage stays in the part's recent errors"


async def test_opens_with_redis_stopped(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", redis_url=f"redis://127.0.0.1:{free_port()}/0")
    app = WorkbenchApp(LiveSource(settings, thresholds()), interval=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.state.health is not None, "the first refresh")
        bar = app.query_one("#bar-reflex", HealthBar)
        assert level_of(app, "reflex") is Level.CRITICAL and bar.has_class("-alert")
        assert "Redis unreachable" in str(bar.render())
        assert level_of(app, "durability") in (Level.THRIVING, Level.HEALTHY)
        await until(pilot, lambda: notes_about(app, "Reflex CRITICAL"), "a notification that says so")


async def test_opens_with_the_relay_not_running(tmp_path: Path, pg_schema: str) -> None:
    settings = Settings(home=tmp_path / "home", postgres_url=PG_URL, postgres_schema=pg_schema)
    await plant(settings, ("planted while no relay runs",))
    app = WorkbenchApp(LiveSource(settings, thresholds(relay_grace_s=0.0)), interval=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.state.health is not None, "the first refresh")
        bar = app.query_one("#bar-synapse", HealthBar)
        assert level_of(app, "synapse") is Level.DEGRADED and "▲ DEGRADED" in str(bar.render())
        assert "relay not running" in str(bar.render())
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LoomScreen), "Loom opens")


async def test_garden_browser_and_mri_through_the_face(tmp_path: Path) -> None:
    """On the embedded default: entries listed, filtered and inspected with their history; the map of every
    entry, search hits highlighted; the health probe still measures the index the face opened a moment before."""
    settings = Settings(home=tmp_path / "home", persona="kent")
    async with await AsyncMemory.open(settings) as memory:
        first = await memory.remember("I prefer minimal code", tags=["code"])
        await memory.remember("small modules with one job", tags=["code"])
        await memory.remember("tea, not coffee", tags=["life"])
        await memory.nurture(first.id, evidence="said so again")
    app = WorkbenchApp(LiveSource(settings, thresholds()), interval=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: bool(app.state.souls), "the soul's card")
        assert app.state.souls[0].soul_id
        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, GardenScreen), "the garden")
        garden = app.screen
        assert isinstance(garden, GardenScreen)
        table = garden.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 3, "three entries listed")
        table.move_cursor(row=[str(k.value) for k in table.rows].index(str(first.id)))
        side = garden.query_one("#garden-entry", Static)
        await until(pilot, lambda: "history (2 changes)" in str(side.render()), "the entry's history")
        await pilot.press("slash", *"tag:life", "enter")
        await until(pilot, lambda: table.row_count == 1, "the filter")
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MRIScreen), "the MRI")
        mri = app.screen
        assert isinstance(mri, MRIScreen)
        await until(pilot, lambda: len(mri.entries) == 3, "every entry mapped")
        assert mri.points.shape == (3, 2)
        await pilot.press("slash", *"minimal code", "enter")
        await until(pilot, lambda: str(first.id) in mri.hits, "the best hit highlighted")
        assert "◉" in str(mri.query_one("#mri-map", Static).render())
        done = app.state.refreshes
        await until(pilot, lambda: app.state.refreshes >= done + 2, "more refreshes")
        assert level_of(app, "resonance") is Level.THRIVING, "the workbench never holds the index from its probe"

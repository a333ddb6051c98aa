"""Snapshots of every screen at 80x24 and 160x48 on the seeded demo data set (fixed health, entries, vectors,
drift history, soul): refreshed with `pytest tests/workbench/test_snapshots.py --snapshot-update`."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from kgents.workbench.app import WorkbenchApp
from kgents.workbench.demo import FixedSource, degraded, healthy

SIZES = [(80, 24), (160, 48)]
ONCE = 3600.0
"""Snapshots take the first refresh only."""


def bench(*, sick: bool = False) -> WorkbenchApp:
    return WorkbenchApp(FixedSource([degraded() if sick else healthy()]), interval=ONCE, glitch_s=0.0)


def settle(*keys: str, typed: str | None = None, theme: str | None = None) -> Callable[[Pilot[None]], Awaitable[None]]:
    async def run_before(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, WorkbenchApp)
        if theme is not None:
            app.theme = theme
        while app.state.refreshes < 1:
            await pilot.pause(0.02)
        for key in keys:
            await pilot.press(key)
            await app.workers.wait_for_complete()
            await pilot.pause()
        if typed is not None:
            await pilot.press(*typed, "enter")
            await app.workers.wait_for_complete()
        await pilot.pause()

    return run_before


SCREENS: dict[str, tuple[bool, tuple[str, ...], str | None]] = {
    "flux_healthy": (False, (), None),
    "flux_degraded": (True, (), None),
    "detail_resonance": (True, ("tab", "enter"), None),
    "loom": (False, ("l",), None),
    "mri_search": (False, ("m", "slash"), "small code"),
    "garden": (False, ("g", "down"), None),
    "help": (False, ("question_mark",), None),
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", list(SCREENS))
def test_screen_snapshot(name: str, size: tuple[int, int], snap_compare: Any) -> None:
    sick, keys, typed = SCREENS[name]
    assert snap_compare(bench(sick=sick), run_before=settle(*keys, typed=typed), terminal_size=size)


@pytest.mark.parametrize("name", ["flux_degraded", "detail_resonance"])
def test_light_theme_snapshot(name: str, snap_compare: Any) -> None:
    sick, keys, typed = SCREENS[name]
    run_before = settle(*keys, typed=typed, theme="textual-light")
    assert snap_compare(bench(sick=sick), run_before=run_before, terminal_size=(80, 24))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_footer_fits_the_screen(size: tuple[int, int]) -> None:
    """Every key the footer shows is whole on screen at 80 columns too (it used to end in "q Qui")."""
    from textual.widgets._footer import FooterKey

    app = bench()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        keys = list(app.screen.query(FooterKey))
        assert {key.description for key in keys} >= {"Flux", "Loom", "MRI", "Garden", "Help", "Quit"}
        shown = sorted((key.region for key in keys), key=lambda r: r.x)
        assert all(r.width > 0 and r.right <= size[0] for r in shown), shown
        overlaps = [(a, b) for a, b in itertools.pairwise(shown) if a.right > b.x]
        assert not overlaps, f"a key is cut by the next one (the palette's, docked right): {overlaps}"

"""Export the README's workbench screenshots (SVG, by Textual) from the seeded demo data set into docs/.

    .venv/bin/python deploy/workbench_screenshots.py
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from kgents.workbench.app import WorkbenchApp
from kgents.workbench.demo import FixedSource, degraded, healthy

DOCS = Path(__file__).resolve().parent.parent / "docs"
SIZE = (110, 32)


async def shoot(name: str, sick: bool, keys: tuple[str, ...] = (), typed: str | None = None) -> None:
    app = WorkbenchApp(FixedSource([degraded() if sick else healthy()]), interval=3600.0, glitch_s=0.0)
    async with app.run_test(size=SIZE) as pilot:
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
        app.save_screenshot(f"workbench-{name}.svg", str(DOCS))


async def main() -> None:
    DOCS.mkdir(exist_ok=True)
    await shoot("flux-healthy", False)
    await shoot("flux-degraded", True)
    await shoot("loom", False, ("l",))
    await shoot("mri", False, ("m", "slash"), "small code")


if __name__ == "__main__":
    asyncio.run(main())

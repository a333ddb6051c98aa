"""The served home beside what holds its memories: forgetting a persona leaves a memory someone still holds (an MCP
session hosting the server keeps one) usable, and empty of what was forgotten."""

from __future__ import annotations

from pathlib import Path

from kgents.config import Settings
from kgents.server.served_home import ServedHome


async def test_a_held_memory_outlives_forgetting_its_persona(tmp_path: Path) -> None:
    served = await ServedHome.open(Settings(home=tmp_path / "home", persona="kent"))
    try:
        held = await served.memory("ada")
        await held.remember("ada likes long walks")
        report = await served.forget("ada", purge_history=False)
        assert report.entries == 1
        assert await held.recall("long walks") == []
        again = await held.remember("ada is back")  # raised "this memory is not open" when forget closed it
        assert [h.entry.id for h in await (await served.memory("ada")).recall("back")] == [again.id]
    finally:
        await served.close()

"""The index's HNSW graph on the face and the CLI (issue 17 item 1): `status()["index_graph"]`, `build_index`
in-process and through a server (RemoteMemory, in short requests), `kgents synapse build` and the graph line of
`kgents synapse status`, with and without a server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from kgents.cli.graph_cmd import graph_line
from kgents.config import Settings
from kgents.memory.api import MemoryItem
from kgents.memory.local import AsyncMemory
from kgents.memory.remote import RemoteMemory
from kgents.resonance.edge import EdgeIndex
from kgents.resonance.factory import index_root
from tests.server_support import cli, running_server


async def test_the_face_shows_the_graph_and_builds_it(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    settings.home.mkdir()
    index = EdgeIndex.open(index_root(settings), indexing_threshold_kb=16)  # a graph for a few hundred points
    memory = await AsyncMemory.open(settings, "kent", index=index)
    try:
        await memory.remember_many([MemoryItem(f"note {i} about the river garden") for i in range(300)])
        plain = (await memory.status())["index_graph"]
        assert (plain["state"], plain["points"], plain["in_graph"], plain["outside"]) == ("plain", 300, 0, 300)
        assert plain["builds_after"] == 20_000

        built = await memory.build_index(now=True, wait_s=120)
        assert built is not None
        assert (built["state"], built["in_graph"], built["outside"]) == ("built", 300, 0)
        assert (await memory.status())["index_graph"]["state"] == "built"
        assert (await memory.build_index(now=False, wait_s=0))["state"] == "built"  # type: ignore[index]
        assert await memory.recall("river garden", limit=3)
    finally:
        await memory.close()


def test_build_through_the_server_and_the_cli(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")

    async def through(server: Any) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        async with RemoteMemory(server.info, "kent") as memory:
            await memory.remember_many([MemoryItem(f"server note {i} about lanterns") for i in range(20)])
            return await memory.build_index(now=True, wait_s=60), await memory.status()

    with running_server(settings) as server:
        graph, status = asyncio.run(through(server))
        assert graph is not None and graph["points"] == 20
        assert graph["state"] == "plain"  # 20 points: under the engine's threshold, nothing to build
        assert status["index_graph"]["points"] == 20
        done = cli(settings, "synapse", "build", "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["graph"]["points"] == 20
        shown = cli(settings, "synapse", "status", "--json")
        assert json.loads(shown.stdout)["graph"]["outside"] == 20, shown.stderr

    alone = cli(settings, "synapse", "build", "--wait-only")  # no server: the index opened by the command
    assert alone.returncode == 0, alone.stderr
    assert "graph      plain: 20 points, all searched exactly" in alone.stdout
    text = cli(settings, "synapse", "status")
    assert "graph      plain: 20 points" in text.stdout, text.stdout + text.stderr


def test_graph_lines() -> None:
    common = {"points": 1000, "builds_after": 500, "last_build_s": 2.5, "last_pause_s": 0.25}
    built = {**common, "state": "built", "in_graph": 900, "outside": 100}
    assert graph_line(built) == (
        "graph      built: 900 of 1,000 points in the graph, 100 searched exactly beside it; last build 2.5 s"
        " (writes waited 0.2 s); a build starts by itself at 500 outside"
    )
    building = {**common, "state": "building", "in_graph": 0, "outside": 1000, "phase": "graph", "progress": 0.42}
    assert graph_line({**building, "elapsed_s": 3.0}) == (
        "graph      building (graph, ~42 %, 3.0 s): 1,000 points, 0 in the graph so far"
    )
    assert graph_line({**common, "state": "plain", "points": 1, "in_graph": 0, "outside": 1}) == (
        "graph      plain: 1 point, all searched exactly; a build starts by itself at 500 outside"
    )
    assert graph_line(None) is None

"""The embedded index's HNSW graph builds itself (issue 17 item 1): the dense vectors outside the graph are counted
without the lexical vectors the engine's indexed count includes, the build starts by itself past the threshold
(it never did while lexical vectors were counted), and its state (plain, building, built) is shown."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np

from kgents.resonance.edge import EdgeIndex
from kgents.resonance.lexical import document_terms
from kgents.resonance.protocols import IndexGraph, IndexPoint, PointPayload
from tests.helpers import wait_until

DIM = 32
WORDS = ("garden", "river", "stone", "lantern", "violin", "harbour", "meadow", "copper")


def lexical_points(n: int, seed: int, empty_every: int = 0) -> list[IndexPoint]:
    """Points with a dense vector and a non-empty lexical one (or, every `empty_every`-th, an empty one)."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    out = []
    for i, v in enumerate(vectors):
        empty = empty_every and i % empty_every == 0
        text = "is it the" if empty else f"{WORDS[i % len(WORDS)]} {WORDS[(i // 8) % len(WORDS)]} {seed}"
        payload = PointPayload("kent", "PATTERN", "SEED", 0.5, (), 1, "h", "e")
        out.append(IndexPoint(uuid.uuid4(), v, payload, lexical=document_terms(text)))
    return out


@asynccontextmanager
async def small_index(root: Path, points: int, seed: int, empty_every: int = 0) -> AsyncIterator[EdgeIndex]:
    """An index whose graph takes a few thousand points (a low indexing threshold), no automatic build, and
    collection "c" holding `points` lexical points."""
    index = EdgeIndex.open(root, auto_build_after=None, indexing_threshold_kb=16)
    try:
        await index.ensure_collection("c", "e", DIM)
        await index.upsert("c", lexical_points(points, seed=seed, empty_every=empty_every))
        yield index
    finally:
        await index.close()


async def test_points_outside_the_graph_are_counted_without_the_lexical_vectors(tmp_path: Path) -> None:
    async with small_index(tmp_path / "index", 3000, seed=1, empty_every=10) as index:
        plain = await index.graph("c")
        assert (plain.state, plain.points, plain.in_graph, plain.outside) == ("plain", 3000, 0, 3000)
        assert plain.builds_after is None

        built = await index.build_graph("c", now=True, timeout_s=120)
        assert (built.state, built.in_graph, built.outside) == ("built", 3000, 0)
        assert built.last_build_s is not None and built.last_build_s > 0
        assert built.last_pause_s is not None and 0 < built.last_pause_s < built.last_build_s

        await index.upsert("c", lexical_points(40, seed=2, empty_every=2))  # half with an empty lexical vector
        later = await index.graph("c")
        assert (later.points, later.in_graph, later.outside) == (3040, 3000, 40)

    reopened = EdgeIndex.open(tmp_path / "index", auto_build_after=None)
    try:
        await reopened.ensure_collection("c", "e", DIM)
        again = await reopened.graph("c")
        assert (again.state, again.points, again.in_graph, again.outside) == ("built", 3040, 3000, 40)
    finally:
        await reopened.close()


async def test_build_starts_by_itself_past_the_threshold_with_lexical_vectors(tmp_path: Path) -> None:
    """Failed before issue 17: every non-empty lexical vector counted as indexed, so nothing looked unindexed."""
    index = EdgeIndex.open(tmp_path / "index", auto_build_after=1500, indexing_threshold_kb=16)
    try:
        await index.ensure_collection("c", "e", DIM)
        for start in range(4):
            await index.upsert("c", lexical_points(500, seed=10 + start))
        graph = await wait_until(
            lambda: index.graph("c"), lambda g: g.state == "built", timeout=120, what="the automatic HNSW build"
        )
        assert graph.in_graph >= 1500 and graph.points == 2000
    finally:
        await index.close()


async def test_building_shows_its_phase_and_a_build_can_be_awaited(tmp_path: Path) -> None:
    async with small_index(tmp_path / "index", 3000, seed=3) as index:
        waited = await index.build_graph("c", now=False, timeout_s=5)  # nothing runs: the state at once
        assert waited.state == "plain"

        build = asyncio.create_task(index.build_graph("c", now=True))
        building: IndexGraph = await wait_until(
            lambda: index.graph("c"), lambda g: g.state != "plain", timeout=30, what="the build to start"
        )
        if building.state == "building":  # it may have finished already on a fast machine
            assert building.phase in {"copy", "graph", "swap"}
            assert building.progress is not None and 0.0 <= building.progress < 1.0
            assert building.elapsed_s is not None
        short = await index.build_graph("c", now=False, timeout_s=0.001)  # gives up waiting, the build goes on
        assert short.state in {"building", "built"}
        assert (await build).state == "built"
        assert (await index.build_graph("c", now=True, timeout_s=5)).state == "built"  # nothing left to build


async def test_building_now_also_takes_what_came_after_a_running_build(tmp_path: Path) -> None:
    async with small_index(tmp_path / "index", 3000, seed=4) as index:
        running = asyncio.create_task(index.build_graph("c", now=True))
        await wait_until(lambda: index.graph("c"), lambda g: g.phase == "graph", timeout=30, what="the copy")
        await index.upsert("c", lexical_points(500, seed=5))  # after the copy: the running build misses them
        graph = await index.build_graph("c", now=True, timeout_s=120)
        assert (graph.state, graph.points, graph.in_graph, graph.outside) == ("built", 3500, 3500, 0)
        await running

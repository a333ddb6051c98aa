"""The embedded index builds HNSW in a child process and swaps it in: searches keep answering meanwhile,
writes made during the build survive the swap, and a crash mid-swap is repaired on the next open."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from kgents.garden.filters import EntryFilter
from kgents.resonance.edge import EdgeIndex
from kgents.resonance.protocols import IndexPoint, PointPayload
from tests.helpers import wait_until

DIM = 32


def make_points(n: int, seed: int, version: int = 1) -> list[IndexPoint]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [
        IndexPoint(uuid.uuid4(), v, PointPayload("kent", "PATTERN", "SEED", 0.5, (), version, "h", "e"))
        for v in vectors
    ]


async def indexed_vectors(index: EdgeIndex) -> int:
    return int((await index.collections())[0].extra["indexed_vectors"])


async def test_build_runs_beside_searches_and_keeps_concurrent_writes(tmp_path: Path) -> None:
    index = EdgeIndex.open(tmp_path / "index", auto_build_after=None, indexing_threshold_kb=64)
    try:
        await index.ensure_collection("c", "e", DIM)
        base = make_points(4000, seed=1)
        await index.upsert("c", base)
        assert await indexed_vectors(index) == 0

        build = asyncio.create_task(index.optimize("c"))
        searches_during_build = 0
        late = make_points(50, seed=2)
        bumped = [
            IndexPoint(p.id, p.vector, PointPayload("kent", "PATTERN", "TREE", 0.8, (), 2, "h", "e")) for p in base[:20]
        ]
        deleted = [p.id for p in base[20:30]]
        writes = [
            index.upsert("c", late[:25]),
            index.upsert("c", bumped),
            index.delete("c", deleted),
            index.upsert("c", late[25:]),
        ]
        while not build.done():
            hits = await index.search("c", base[100].vector, "kent", EntryFilter(), limit=1)
            assert hits[0].id == base[100].id
            searches_during_build += 1
            if writes:
                await writes.pop(0)
            await asyncio.sleep(0)
        for pending in writes:
            await pending
        assert await build is True
        assert searches_during_build > 0

        assert await indexed_vectors(index) > 0
        expected = {p.id: ("kent", 1) for p in base[30:]}
        expected |= {p.id: ("kent", 2) for p in bumped}
        expected |= {p.id: ("kent", 1) for p in late}
        assert await index.versions("c") == expected
        assert await index.count("c") == len(expected)
        hits = await index.search("c", late[3].vector, "kent", EntryFilter(), limit=1)
        assert hits[0].id == late[3].id
        assert not (tmp_path / "index" / "collections" / "c" / "shard.build").exists()
        assert not (tmp_path / "index" / "collections" / "c" / "shard.old").exists()
    finally:
        await index.close()

    reopened = EdgeIndex.open(tmp_path / "index")
    try:
        await reopened.ensure_collection("c", "e", DIM)
        assert await reopened.count("c") == len(expected)
        assert await indexed_vectors(reopened) > 0
    finally:
        await reopened.close()


async def test_build_starts_by_itself_after_enough_unindexed_points(tmp_path: Path) -> None:
    index = EdgeIndex.open(tmp_path / "index", auto_build_after=500, indexing_threshold_kb=16)
    try:
        await index.ensure_collection("c", "e", DIM)
        for start in range(0, 1200, 300):
            await index.upsert("c", make_points(300, seed=start))
        await wait_until(lambda: indexed_vectors(index), lambda n: n > 0, timeout=60, what="background HNSW")
        assert await index.count("c") == 1200
    finally:
        await index.close()


async def test_interrupted_swap_is_repaired_on_open(tmp_path: Path) -> None:
    root = tmp_path / "index"
    points = make_points(10, seed=3)
    index = EdgeIndex.open(root)
    await index.ensure_collection("c", "e", DIM)
    await index.upsert("c", points)
    await index.close()

    folder = root / "collections" / "c"
    (folder / "shard").rename(folder / "shard.old")  # as if killed between the two renames of a swap
    shutil.copytree(folder / "shard.old", folder / "shard.build")

    index = EdgeIndex.open(root)
    try:
        await index.ensure_collection("c", "e", DIM)
        assert set(await index.versions("c")) == {p.id for p in points}
        assert not (folder / "shard.old").exists() and not (folder / "shard.build").exists()
    finally:
        await index.close()


@pytest.mark.parametrize("idle", [True, False])
def test_the_build_child_yields_the_cpu(idle: bool) -> None:
    """A build that started by itself runs at the scheduler's idle weight, one asked for at nice 10: the
    writers of the serving process keep their rate on a small machine."""
    check = (
        "import os, sys; from kgents.resonance.edge_build import lower_priority; lower_priority(sys.argv[1] == 'idle');"
        " print(os.sched_getscheduler(0), os.nice(0))"
    )
    done = subprocess.run(
        [sys.executable, "-c", check, "idle" if idle else "asked"], capture_output=True, text=True, check=True
    )
    policy, niceness = (int(x) for x in done.stdout.split())
    if idle:
        assert policy == os.SCHED_IDLE
    else:
        assert (policy, niceness) == (os.SCHED_OTHER, min(os.nice(0) + 10, 19))

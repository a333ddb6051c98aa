"""What only one adapter has: the embedded index's single owner (real second processes, kill -9), its
persistence across reopen, the server adapter's connection errors, and `open_index` choosing between them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from kgents.config import Settings
from kgents.errors import BackendUnavailableError, IndexLockedError
from kgents.garden.filters import EntryFilter
from kgents.resonance.edge import EdgeIndex
from kgents.resonance.factory import index_root, open_index
from kgents.resonance.protocols import IndexPoint, PointPayload
from kgents.resonance.server import QdrantServerIndex
from tests.helpers import wait_until_sync

OWNER = """
import asyncio, sys
from pathlib import Path
from kgents.resonance.edge import EdgeIndex
index = EdgeIndex.open(Path(sys.argv[1]))
asyncio.run(index.ensure_collection("c", "e", 4))
print("ready", flush=True)
sys.stdin.read()  # hold the index until the test closes our stdin (or kills us)
"""

CONTENDER = """
import sys
from pathlib import Path
from kgents.errors import IndexLockedError
from kgents.resonance.edge import EdgeIndex
try:
    EdgeIndex.open(Path(sys.argv[1]))
except IndexLockedError as exc:
    print(exc)
    sys.exit(3)
print("opened")
"""


@pytest.fixture
def owner(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(tmp_path / "index")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def contend(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CONTENDER, str(root)], capture_output=True, text=True, timeout=30)


def test_second_process_gets_a_clear_error_naming_the_owner(owner: subprocess.Popen[str], tmp_path: Path) -> None:
    done = contend(tmp_path / "index")
    assert done.returncode == 3, done.stderr
    assert f"pid {owner.pid}" in done.stdout
    assert "WAL" not in done.stdout and "Traceback" not in done.stderr
    with pytest.raises(IndexLockedError, match=f"pid {owner.pid} on "):
        EdgeIndex.open(tmp_path / "index")


def test_kill_9_of_the_owner_releases_the_index(owner: subprocess.Popen[str], tmp_path: Path) -> None:
    os.kill(owner.pid, signal.SIGKILL)
    owner.wait(timeout=10)
    done = wait_until_sync(lambda: contend(tmp_path / "index"), lambda d: d.returncode == 0, what="reopen")
    assert done.stdout.strip() == "opened"


async def test_clean_close_releases_and_data_persists(tmp_path: Path) -> None:
    root = tmp_path / "index"
    entry = uuid.uuid4()
    payload = PointPayload("kent", "PREFERENCE", "SEED", 0.5, ("t",), 3, "h", "e")
    first = EdgeIndex.open(root)
    await first.ensure_collection("c", "e", 4)
    await first.upsert("c", [IndexPoint(entry, np.array([1, 0, 0, 0], dtype=np.float32), payload)])
    with pytest.raises(IndexLockedError):  # also within one process: one owner object at a time
        EdgeIndex.open(root)
    await first.close()
    await first.close()  # idempotent

    second = EdgeIndex.open(root)
    try:
        await second.ensure_collection("c", "e", 4)
        assert await second.retrieve("c", [entry]) == {entry: payload}
        hits = await second.search("c", [1.0, 0, 0, 0], "kent", EntryFilter())
        assert [h.id for h in hits] == [entry]
        assert [c.name for c in await second.collections()] == ["c"]
        assert await second.optimize("c") in {True, False}  # maintenance entry point works on small data
        assert await second.count("c") == 1
    finally:
        await second.close()
    with pytest.raises(BackendUnavailableError, match="closed"):
        await second.count("c")


async def test_unreachable_server_names_the_setting_never_the_key() -> None:
    index = QdrantServerIndex.connect("http://127.0.0.1:1", api_key="s3cret-key", timeout=2)
    try:
        with pytest.raises(BackendUnavailableError) as caught:
            await index.ensure_collection("c", "e", 4)
        message = str(caught.value)
        assert "KGENTS_QDRANT_URL=http://127.0.0.1:1" in message
        assert "s3cret-key" not in message and "\n" not in message
    finally:
        await index.close()


async def test_open_index_chooses_by_settings(tmp_path: Path) -> None:
    embedded = open_index(Settings(home=tmp_path / "home"))
    try:
        assert isinstance(embedded, EdgeIndex) and embedded.backend == "edge"
        assert index_root(Settings(home=tmp_path / "home")) == tmp_path / "home" / "index"
        assert (tmp_path / "home" / "index" / "owner.lock").exists()
    finally:
        await embedded.close()
    served = open_index(Settings(home=tmp_path / "home", qdrant_url="http://127.0.0.1:6333", qdrant_api_key="k"))
    try:
        assert isinstance(served, QdrantServerIndex) and served.backend == "qdrant"
    finally:
        await served.close()


def test_core_modules_import_no_ui_library() -> None:
    script = (
        "import sys\n"
        "import kgents.resonance.factory, kgents.resonance.server, kgents.resonance.edge\n"
        "import kgents.resonance.embedders, kgents.resonance.static\n"
        "from kgents.resonance.embedders import open_embedder\n"
        "open_embedder().embed(['x'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'rich', 'textual', 'torch'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


async def test_concurrent_first_use_of_a_collection_opens_it_once(tmp_path: Path) -> None:
    first = EdgeIndex.open(tmp_path / "index")
    await first.ensure_collection("c", "e", 4)
    await first.close()
    index = EdgeIndex.open(tmp_path / "index")
    try:
        counts = await asyncio.gather(*(index.count("c") for _ in range(8)))
        assert counts == [0] * 8
    finally:
        await index.close()


async def test_open_memory_waits_for_the_owner_instead_of_failing(owner: subprocess.Popen[str], tmp_path: Path) -> None:
    """`Memory()` / `open_memory` beside a process that owns the embedded index for a moment waits for it (as every
    kgents command does) instead of raising "in use"."""
    from kgents.memory.factory import open_memory

    settings = Settings(home=tmp_path, persona="kent")
    assert index_root(settings) == tmp_path / "index", "the owner fixture holds this home's index"
    opening = asyncio.create_task(open_memory(settings))
    done, _ = await asyncio.wait({opening}, timeout=0.5)  # a look: it must be waiting, not failed
    assert not done, f"open_memory did not wait for the owner: {opening.exception() if done else ''}"
    assert owner.stdin is not None
    owner.stdin.close()  # the owner lets go
    memory = await asyncio.wait_for(opening, timeout=30)
    try:
        assert (await memory.remember("opened after the owner let go")).content == "opened after the owner let go"
    finally:
        await memory.close()

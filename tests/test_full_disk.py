"""A full disk never breaks the embedded home (issue 16 item 5): homes on small tmpfs mounts (skipped where this
process may not mount), real kgents processes. A 5 MiB home is one clear line with exit 74; a writer whose disk
fills gets errors that say what became of each write (kept and not yet searchable, or not kept), never SIGBUS;
once space is freed everything acknowledged is there and searchable. An index whose last open died, or that can
no longer be read, is moved aside and rebuilt from the anchor with one line saying so."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kgents.cli.exit_codes import ExitCode
from kgents.config import Settings
from kgents.memory.local import AsyncMemory
from kgents.resonance.edge_guard import BROKEN, OPENING
from tests.fault_support import FULL_DISK_WRITER, CannotMount, fill, small_disk
from tests.helpers import kgents_env, wait_until_sync
from tests.server_support import KGENTS

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def mounted(where: Path, size: str) -> Iterator[Path]:
    """`small_disk`, or the test skipped with the reason when this process may not mount."""
    disk = small_disk(where, size)
    try:
        path = disk.__enter__()
    except CannotMount as exc:
        pytest.skip(str(exc))
    try:
        yield path
    finally:
        disk.__exit__(None, None, None)


def test_a_five_mib_home_is_one_clear_line_with_its_own_exit_code(tmp_path: Path) -> None:
    with mounted(tmp_path / "disk", "5m") as disk:
        settings = Settings(home=disk / "home")
        search = subprocess.run(
            [str(KGENTS), "garden", "search", "anything"], env=kgents_env(settings), capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert search.returncode == ExitCode.STORAGE_FULL, (search.returncode, search.stderr[-500:])
        assert "is full" in search.stderr and "Traceback" not in search.stderr
        assert len(search.stderr.strip().splitlines()) == 1, search.stderr
        opened = subprocess.run(
            [sys.executable, "-c", "from kgents import Memory\ntry:\n Memory('kent')\nexcept Exception as e:\n"
             " print(type(e).__name__)"],
            env=kgents_env(settings), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert opened.returncode == 0 and opened.stdout.strip() == "StorageFullError", (opened.returncode, opened)


def test_a_writer_whose_disk_fills_is_told_and_the_home_works_again_once_space_is_freed(tmp_path: Path) -> None:
    with mounted(tmp_path / "disk", "400m") as disk:
        settings = Settings(home=disk / "home", persona="kent")
        signals = tmp_path / "signals"
        signals.mkdir()
        writer = subprocess.Popen(
            [sys.executable, "-c", FULL_DISK_WRITER, str(signals)], env=kgents_env(settings), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        wait_until_sync(lambda: (signals / "ready").exists() or writer.poll() is not None, timeout=120)
        filler = fill(disk, 256 * 1024)
        (signals / "filled").touch()
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, (writer.returncode, err)  # it died of SIGBUS (-7)
        outcomes = {uuid.UUID(i): o for i, o in json.loads(out)}
        assert {o for o in outcomes.values()} >= {"acknowledged"}
        assert "refused" in outcomes.values() or "kept" in outcomes.values(), outcomes
        filler.unlink()

        async def after() -> None:
            async with await AsyncMemory.open(settings) as memory:
                await memory.stack.catch_up(60)
                stored = {e.id for e in await memory.list(limit=1000)}
                written = {i for i, o in outcomes.items() if o in ("acknowledged", "kept")}
                assert written <= stored, "an acknowledged or kept write is missing"
                assert not {i for i, o in outcomes.items() if o == "refused"} & stored, "a refused write was kept"
                report = await memory.stack.coherency()
                assert report.coherency_with_truth == 1.0, report.to_dict()
                again = await memory.remember("written once the disk had room again")
                assert [h.entry.id for h in await memory.recall("once the disk had room again", limit=1)] == [again.id]

        asyncio.run(after())


async def test_an_index_that_cannot_be_read_is_rebuilt_from_the_anchor(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two ways an index is lost: a load that died (its marker outlived its process: SIGBUS on a full disk) and
    files the engine cannot read. Each time the collection is moved aside and refilled, with one line."""
    settings = Settings(home=tmp_path / "home", persona="kent")
    async with await AsyncMemory.open(settings) as memory:
        entries = [await memory.remember(f"fact {i} about the garden") for i in range(12)]
        collection = memory.stack.state.active.collection
    folder = settings.home / "index" / "collections" / collection
    for damage in ("died", "unreadable"):
        if damage == "died":
            (folder / OPENING).write_text("12345\n")
        else:
            for segment in (folder / "shard" / "segments").iterdir():
                (segment / "segment.json").write_text("not json")
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            async with await AsyncMemory.open(settings) as memory:
                report = await memory.stack.coherency()
                assert report.coherency_with_truth == 1.0 and report.index_points == 12, report.to_dict()
                hits = await memory.recall("fact 7 about the garden", limit=1)
                assert [h.entry.id for h in hits] == [entries[7].id]
        lines = [r.getMessage() for r in caplog.records if "could not read collection" in r.getMessage()]
        assert len(lines) == 1, [r.getMessage() for r in caplog.records]
        assert any("rebuilt from the anchor: 12 entries" in r.getMessage() for r in caplog.records)
        assert not (folder / OPENING).exists()
        assert len(list((settings.home / "index" / BROKEN).iterdir())) == 1

"""What a person sees of the CLI: piped output is never hard-wrapped (one console factory, `cli.context.make_console`),
and long work (an import, the first search after it while it indexes, a reindex) shows progress on stderr: a
rich bar on a terminal, a count line when stderr is not one."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kgents.cli import progress
from kgents.config import Settings
from kgents.garden.service import PersonaGarden
from kgents.memory.portable import MemoryBundle, bundle_lines
from tests.helpers import CliHarness, kgents_env
from tests.server_support import KGENTS

LONG = "I prefer minimal code, small modules, plain names and no comment that repeats what the code says " * 4


def piped(settings: Settings, *args: str) -> str:
    env = {k: v for k, v in kgents_env(settings).items() if k != "COLUMNS"}  # what a real pipe has
    done = subprocess.run([str(KGENTS), *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_piped_output_is_never_wrapped(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    planted = piped(settings, "garden", "plant", LONG.strip(), "--tag", "style", "--json")
    entry_id = planted.split('"id": "')[1][:36]
    shown = piped(settings, "garden", "show", entry_id).splitlines()
    assert any(LONG.strip() in line for line in shown), "the content on one line, as long as it is"
    assert all(len(line.split()) > 1 for line in shown if line.strip()), "no row split over lines"
    row = [line for line in piped(settings, "garden", "list").splitlines() if entry_id[:8] in line]
    assert len(row) == 1 and "style" in row[0], "a table row stays one line"
    info = piped(settings, "db", "info").splitlines()
    assert any(str(settings.sqlite_path) in line and "SQLite" in line for line in info)


def export_of(count: int) -> str:
    garden = PersonaGarden(store=None, persona="kent")  # type: ignore[arg-type]  # new_entry needs no store
    entries = tuple(garden.new_entry(f"memory {i} of tea, jazz and code", "INSIGHT") for i in range(count))
    return "\n".join(bundle_lines(MemoryBundle("kent", entries, ()))) + "\n"


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> CliHarness:
    monkeypatch.setattr(progress, "QUIET_S", 0.0)  # show the progress of work however short it is here
    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.05)
    return CliHarness(Settings(home=tmp_path / "home"), capsys, monkeypatch)


def test_long_work_shows_a_count_when_stderr_is_not_a_terminal(cli: CliHarness, tmp_path: Path) -> None:
    path = tmp_path / "kent.jsonl"
    path.write_text(export_of(2000), encoding="utf-8")
    code, out, err = cli("import", str(path))
    assert code == 0 and out.startswith("imported into kent: 2000 entries added"), err
    assert "kgents: import: checking: 2,001 of 2,001 lines (done in" in err
    assert "kgents: import: writing 2,000 entries in one transaction (done in" in err
    code, out, err = cli("garden", "search", "jazz", "--json")
    assert code == 0 and '"hits"' in out and "kgents: indexing pending writes: 2,000 of 2,000 events (done in" in err
    code, out, err = cli("synapse", "reindex")
    assert code == 0 and out.startswith("reindexed 2,000 entries"), err
    assert "entries (done in" in err and "reindex with minilm-mpnet-static-384: 2,000 of 2,000" in err
    for line in err.splitlines():
        assert line.startswith("kgents: ") and "\x1b" not in line, line


@contextlib.contextmanager
def terminal_stderr(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """sys.stderr on a pseudo-terminal for the block; yields what was written to it (complete after the block)."""
    master, slave = os.openpty()
    seen: list[bytes] = []

    def read() -> None:
        with contextlib.suppress(OSError):
            while chunk := os.read(master, 65536):
                seen.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    tty = os.fdopen(slave, "w", encoding="utf-8", buffering=1)
    monkeypatch.setattr(sys, "stderr", tty)
    try:
        yield seen
    finally:
        monkeypatch.undo()
        tty.close()
        reader.join(timeout=10)
        os.close(master)


def test_long_work_shows_a_bar_on_a_terminal(cli: CliHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "kent.jsonl"
    path.write_text(export_of(500), encoding="utf-8")
    with terminal_stderr(monkeypatch) as seen:
        code, out, _ = cli("import", str(path))
    shown = b"".join(seen).decode("utf-8", "replace")
    assert code == 0 and out.startswith("imported into kent: 500 entries added")
    assert "import: checking" in shown and "\x1b[" in shown, "a rich display, with its control sequences"
    assert "kgents: import: checking:" not in shown, "not the count lines of a log"

"""Ghost files: atomic (never half written), private (0600 / 0700), stale-aware, free of secrets, and the
thought stream appended exactly once per move into or out of DEGRADED / CRITICAL."""

from __future__ import annotations

import json
import os
import stat
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from kgents.clock import utcnow
from kgents.config import Settings
from kgents.health.ghost import (
    HEALTH_JSON,
    STATUS_LINE,
    THOUGHTS,
    ghost_dir,
    read_ghost,
    status_line,
    write_ghost,
)
from kgents.health.model import Level, PartHealth, TriadHealth
from tests.helpers import CliHarness


def health(level: Level, coherency: float | None = None, reason: str = "why") -> TriadHealth:
    figures = {} if coherency is None else {"coherency_with_truth": coherency}
    parts = (
        PartHealth("durability", Level.THRIVING, "ok", "SQLite"),
        PartHealth("resonance", level, reason, "Qdrant", figures),
    )
    return TriadHealth(parts, utcnow())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_status_line() -> None:
    assert status_line(health(Level.HEALTHY, 1.0)) == "triad:HEALTHY"
    assert status_line(health(Level.STRAINED, 2 / 3)) == "triad:STRAINED drift:33%"
    assert status_line(health(Level.THRIVING)) == "triad:THRIVING"


def test_files_are_private_and_read_back(tmp_path: Path) -> None:
    write_ghost(tmp_path, health(Level.STRAINED, 2 / 3), interval_s=30)
    folder = ghost_dir(tmp_path)
    assert mode(folder) == 0o700
    for name in (HEALTH_JSON, STATUS_LINE):
        assert mode(folder / name) == 0o600
    assert (folder / STATUS_LINE).read_text() == "triad:STRAINED drift:33%\n"
    read = read_ghost(tmp_path)
    assert read.level is Level.STRAINED and not read.stale
    assert [p.name for p in os.scandir(folder) if p.name.endswith(".tmp")] == [], "no temporary file left behind"


def test_a_stale_file_reads_as_unknown(tmp_path: Path) -> None:
    write_ghost(tmp_path, health(Level.HEALTHY, 1.0), interval_s=30)
    document = json.loads((ghost_dir(tmp_path) / HEALTH_JSON).read_text())
    valid_until = document["valid_until"]
    assert read_ghost(tmp_path).level is Level.HEALTHY
    later = utcnow() + timedelta(seconds=91)
    stale = read_ghost(tmp_path, later)
    assert stale.level is Level.UNKNOWN and stale.stale and valid_until in stale.reason
    assert read_ghost(tmp_path / "nowhere").level is Level.UNKNOWN


def test_writes_are_atomic_for_a_concurrent_reader(tmp_path: Path) -> None:
    """A reader polling while a writer rewrites never sees a partial or empty file."""
    write_ghost(tmp_path, health(Level.HEALTHY, 1.0))
    stop = threading.Event()
    bad: list[str] = []

    def reader() -> None:
        path = ghost_dir(tmp_path) / HEALTH_JSON
        while not stop.is_set():
            try:
                json.loads(path.read_text())
            except ValueError as exc:
                bad.append(str(exc))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(200):
            write_ghost(tmp_path, health(Level.STRAINED if i % 2 else Level.HEALTHY, 0.5 + i / 1000, "x" * (i * 20)))
    finally:
        stop.set()
        thread.join()
    assert bad == []


def test_thought_stream_only_on_transitions_exactly_once(tmp_path: Path) -> None:
    thoughts = ghost_dir(tmp_path) / THOUGHTS
    sequence = [
        Level.HEALTHY,
        Level.STRAINED,
        Level.DEGRADED,
        Level.DEGRADED,
        Level.CRITICAL,
        Level.CRITICAL,
        Level.STRAINED,
        Level.STRAINED,
        Level.HEALTHY,
        Level.CRITICAL,
    ]
    appended = [len(write_ghost(tmp_path, health(level, reason=f"r-{level.value}"))) for level in sequence]
    assert appended == [0, 0, 1, 0, 1, 0, 1, 0, 0, 1]
    lines = thoughts.read_text().splitlines()
    assert len(lines) == 4 and mode(thoughts) == 0o600
    assert "Triad health: DEGRADED (was STRAINED): r-DEGRADED" in lines[0]
    assert "Triad health: CRITICAL (was DEGRADED)" in lines[1]
    assert "#recovered" in lines[2] and "STRAINED (was CRITICAL)" in lines[2]
    assert "(was HEALTHY)" in lines[3]


def test_state_is_kept_across_runs(tmp_path: Path) -> None:
    """A new process (no memory of its own) appends nothing for a level that did not change."""
    write_ghost(tmp_path, health(Level.CRITICAL))
    assert write_ghost(tmp_path, health(Level.CRITICAL)) == []
    assert len((ghost_dir(tmp_path) / THOUGHTS).read_text().splitlines()) == 1


def test_no_secret_reaches_the_files(tmp_path: Path) -> None:
    write_ghost(tmp_path, health(Level.CRITICAL, reason="PostgreSQL unreachable: postgresql://kent:s3cret@db:5432/x"))
    for path in ghost_dir(tmp_path).iterdir():
        assert "s3cret" not in path.read_text(), path.name


def test_kgents_ghost_once_on_the_embedded_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(home=tmp_path / "home")
    cli = CliHarness(settings, capsys, monkeypatch)
    code, out, err = cli("ghost", "--timeout", "10")
    assert code in (0, 1), err  # (a busy machine may call commits slow)
    line = (ghost_dir(settings.home) / STATUS_LINE).read_text().strip()
    assert out.strip() == line and line.startswith("triad:")
    assert read_ghost(settings.home).health is not None

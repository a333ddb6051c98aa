"""KGENTS_HOME is private: whatever the umask, kgents makes the home 0700, every folder it makes in it 0700 and
every file 0600 (real `kgents` processes, real files); in an existing home it tightens its own files and says so
when the home itself is open to others."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kgents.anchor.sqlite import Database
from kgents.cli.exit_codes import ExitCode
from kgents.config import Settings
from kgents.health.ghost import ghost_dir
from kgents.home import write_private
from kgents.home.discovery import ensure_token, token_file
from tests.helpers import kgents_env

KGENTS = Path(sys.executable).with_name("kgents")

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


def _kgents(home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KGENTS), *args],
        cwd=cwd,
        env=kgents_env(Settings(home=home)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        umask=0o022,
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _kgents_paths(home: Path) -> list[Path]:
    """What kgents itself makes: the home's entries, and the index's folders above the engine's shard."""
    paths = [home, *home.iterdir()]
    index = home / "index"
    if index.is_dir():
        paths += [*index.iterdir(), *(index / "collections").iterdir()]
        paths += [p for c in (index / "collections").iterdir() for p in c.iterdir()]
    return paths


def test_a_fresh_home_and_everything_in_it_are_owner_only(tmp_path: Path) -> None:
    home = tmp_path / "deep" / "home"
    for args in (("garden", "plant", "secret diary"), ("garden", "search", "diary"), ("ghost",)):
        done = _kgents(home, *args)
        assert done.returncode == 0, done.stderr
    ensure_token(Settings(home=home))
    assert {p.name for p in home.iterdir()} >= {"anchor.db", "index", "ghost", "server.token"}
    for path in _kgents_paths(home) + list(ghost_dir(home).iterdir()):
        assert _mode(path) == (0o700 if path.is_dir() else 0o600), path
    assert _mode(tmp_path / "deep") == 0o700  # a parent kgents made is private too


async def test_the_wal_and_shm_files_are_owner_only_while_open(tmp_path: Path) -> None:
    previous = os.umask(0o022)  # this test's own process only: it checks what SQLite makes beside the database
    try:
        db = await Database.open(tmp_path / "home" / "anchor.db")
    finally:
        os.umask(previous)
    try:
        await db.run(lambda: db.conn.execute("CREATE TABLE t (x)"))
        for name in ("anchor.db", "anchor.db-wal", "anchor.db-shm"):
            assert _mode(tmp_path / "home" / name) == 0o600, name
    finally:
        await db.close()


def test_an_existing_home_keeps_its_mode_gets_its_files_tightened_and_a_warning(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    conn = sqlite3.connect(home / "anchor.db")  # as an older kgents left it: the umask's modes
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    (home / "anchor.db").chmod(0o644)
    (home / "index").mkdir(mode=0o755)
    (home / "index").chmod(0o755)
    done = _kgents(home, "garden", "plant", "secret diary")
    assert done.returncode == 0, done.stderr
    assert _mode(home / "anchor.db") == 0o600
    for args in (("garden", "search", "diary"), ("ghost",)):
        done = _kgents(home, *args)
        assert done.returncode == 0, done.stderr
    ensure_token(Settings(home=home))
    assert _mode(home / "index") == 0o700 and _mode(ghost_dir(home)) == 0o700
    assert _mode(home / "server.token") == 0o600
    assert _mode(home) == 0o755  # the user's folder: not ours to change, so said instead
    info = _kgents(home, "db", "info", "--json")
    assert info.returncode == 0, info.stderr
    warning = json.loads(info.stdout)["home_warning"]
    assert "0755" in warning and f"chmod 700 {home}" in warning
    home.chmod(0o700)
    assert json.loads(_kgents(home, "db", "info", "--json").stdout)["home_warning"] is None


def test_a_home_that_cannot_be_made_is_a_configuration_error_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    for home in (blocker / "home", Path("/proc/kgents-nope")):
        done = _kgents(home, "garden", "list")
        assert done.returncode == ExitCode.CONFIG, done.stderr
        assert f"KGENTS_HOME {home}" in done.stderr and "Errno" not in done.stderr
        assert done.stderr.count("\n") == 1


@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_home_flag_is_a_configuration_error_not_the_working_directory(tmp_path: Path, empty: str) -> None:
    done = _kgents(tmp_path / "home", "--home", empty, "garden", "list", cwd=tmp_path)
    assert done.returncode == ExitCode.CONFIG, done.stderr
    assert done.stderr == "kgents: KGENTS_HOME (--home) is empty; name a folder, or leave it out for ~/.kgents\n"
    assert list(tmp_path.iterdir()) == []  # neither ./anchor.db nor the home from the environment was made


def test_processes_making_the_token_at_once_agree_on_it(tmp_path: Path) -> None:
    """Two servers starting on a fresh home both generate a token: the first one written stays, and both serve
    with it (before, the second replaced the file and clients of the first got 401)."""
    settings = Settings(home=tmp_path / "home")
    first = ensure_token(settings)
    with pytest.raises(FileExistsError):
        write_private(token_file(settings), "another\n", exclusive=True)
    assert ensure_token(settings) == first
    assert token_file(settings).read_text() == first + "\n"
    assert stat.S_IMODE(token_file(settings).stat().st_mode) == 0o600
    assert [p.name for p in settings.home.iterdir() if p.name.endswith(".tmp")] == []

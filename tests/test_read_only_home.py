"""A KGENTS_HOME we may not write: reads that need no write work; anything else says which path is not writable
(exit 78), never "internal error". Tests run as root, which chmod does not stop, so the commands run without the
capabilities that let root write anyway (setpriv)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kgents.cli.exit_codes import ExitCode
from kgents.config import Settings
from tests.helpers import kgents_env

KGENTS = Path(sys.executable).with_name("kgents")
NO_OVERRIDE = ["--bounding-set=-dac_override,-dac_read_search,-fowner,-linux_immutable"]


def _kgents(home: Path, *args: str, writable: bool = True) -> subprocess.CompletedProcess[str]:
    prefix: list[str] = []
    if not writable and os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: nothing can make a folder read-only for us")
        prefix = [setpriv, *NO_OVERRIDE]
    env = kgents_env(Settings(home=home))
    return subprocess.run(
        [*prefix, str(KGENTS), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _set_writable(root: Path, writable: bool) -> None:
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode | 0o200 if writable else mode & ~0o222)


@pytest.fixture
def read_only_home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    for args in (("garden", "plant", "I prefer minimal code", "--tag", "style"), ("soul", "show")):
        done = _kgents(home, *args)
        assert done.returncode == 0, done.stderr
    _set_writable(home, False)
    try:
        yield home
    finally:
        _set_writable(home, True)


@pytest.mark.slow
def test_reads_work_on_a_read_only_home(read_only_home: Path) -> None:
    listed = _kgents(read_only_home, "garden", "list", "--json", writable=False)
    assert listed.returncode == 0, listed.stderr
    assert [e["content"] for e in json.loads(listed.stdout)["entries"]] == ["I prefer minimal code"]
    soul = _kgents(read_only_home, "soul", "show", writable=False)
    assert soul.returncode == 0, soul.stderr
    info = _kgents(read_only_home, "db", "info", writable=False)
    assert info.returncode == 0, info.stderr


@pytest.mark.slow
def test_writes_on_a_read_only_home_name_the_path(read_only_home: Path) -> None:
    listed = _kgents(read_only_home, "garden", "list", "--json", writable=False)
    planted = json.loads(listed.stdout)["entries"][0]["id"]
    for args, path in (
        (("garden", "nurture", planted), read_only_home / "anchor.db"),
        (("garden", "plant", "another"), read_only_home / "index"),  # through the face: it opens the index first
        (("garden", "search", "minimal"), read_only_home / "index"),
    ):
        done = _kgents(read_only_home, *args, writable=False)
        assert done.returncode == ExitCode.CONFIG, done.stderr
        assert f"{path} is not writable" in done.stderr and "internal error" not in done.stderr
        assert done.stderr.count("\n") == 1


@pytest.mark.slow
def test_a_home_that_cannot_be_made(tmp_path: Path) -> None:
    parent = tmp_path / "locked"
    parent.mkdir()
    _set_writable(parent, False)
    try:
        done = _kgents(parent / "home", "garden", "list", writable=False)
    finally:
        _set_writable(parent, True)
    assert done.returncode == ExitCode.CONFIG, done.stderr
    assert "is not writable" in done.stderr and done.stderr.count("\n") == 1

"""Every status command maps its level to the exit code through one function: `soul stats` exits 2 when it says
CRITICAL (it used to exit 0), `synapse status` exits 2 with one line when the anchor is down (it used to exit 69)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgents.cli.exit_codes import ExitCode
from kgents.config import Settings
from tests.helpers import CliHarness
from tests.soul.conftest import free_port


def test_soul_stats_critical_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = CliHarness(Settings(home=tmp_path / "home"), capsys, monkeypatch)
    monkeypatch.setenv("KGENTS_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    code, out, err = cli("soul", "stats", "--json")
    data = json.loads(out)
    assert data["level"] == "CRITICAL" and not data["reachable"]
    assert code == ExitCode.CRITICAL, (code, err)
    code, out, _ = cli("soul", "stats")
    assert code == ExitCode.CRITICAL and "CRITICAL" in out


def test_soul_stats_healthy_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = CliHarness(Settings(home=tmp_path / "home"), capsys, monkeypatch)
    code, out, _ = cli("soul", "stats")
    assert code == ExitCode.OK, out


def test_synapse_status_with_the_anchor_down_is_critical_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(home=tmp_path / "home", postgres_url=f"postgresql://127.0.0.1:{free_port()}/test")
    cli = CliHarness(settings, capsys, monkeypatch)
    code, out, err = cli("synapse", "status")
    assert code == ExitCode.CRITICAL, (code, out, err)
    assert out.startswith("status     CRITICAL: ") and "Traceback" not in err
    code, out, _ = cli("synapse", "status", "--json")
    data = json.loads(out)
    assert code == ExitCode.CRITICAL and data["status"] == "CRITICAL" and data["level"] == "CRITICAL"
    assert data["error"]


def test_synapse_status_names_its_level(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = CliHarness(Settings(home=tmp_path / "home"), capsys, monkeypatch)
    code, out, _ = cli("synapse", "status")
    assert code == ExitCode.OK and out.startswith("status     HEALTHY"), out

"""`kgents soul …` through the real entry point: JSON output, recovery sources, and one-line errors with exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgents.cli.exit_codes import ExitCode
from kgents.config import Settings
from tests.helpers import REDIS_URL
from tests.helpers import CliHarness as Cli


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(Settings(home=tmp_path / "home"), capsys, monkeypatch)


def test_show_mode_eigen_recall_on_the_embedded_default(cli: Cli) -> None:
    first = cli.json("soul", "show")
    assert first["source"] == "new" and first["state"]["soul_id"] == "kent" and first["state"]["mode"] == "REFLECT"
    assert "embedded" in first["spark"] and "SQLite" in first["anchor"]
    changed = cli.json("soul", "mode", "challenge")
    assert changed == {"soul_id": "kent", "mode": "CHALLENGE", "previous": "REFLECT", "revision": 2}
    moved = cli.json("soul", "eigen", "joy=0.3:0.9", "aesthetic=0.5")
    assert moved["joy"] == {"value": 0.3, "confidence": 0.9} and moved["aesthetic"]["value"] == 0.5
    again = cli.json("soul", "recall")  # a new process-like run: the embedded cache is empty, the snapshot is not
    assert again["source"] == "snapshot" and again["state"]["mode"] == "CHALLENGE" and again["state"]["revision"] == 3
    cold = cli.json("soul", "recall", "--cold", "--soul", "other")
    assert cold["source"] == "new" and cold["state"]["soul_id"] == "other"
    code, out, _ = cli("soul", "show")
    assert code == 0 and "CHALLENGE" in out and "Playful" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("soul", "mode", "shout"), "kgents: mode must be one of REFLECT, ADVISE, CHALLENGE, EXPLORE (got 'shout')"),
        (("soul", "eigen", "joy=1.5"), "kgents: eigenvector 'joy' value must be in [0, 1] (got 1.5)"),
        (("soul", "eigen", "joy=0.2", "mood=0.5"), "kgents: unknown eigenvector axis 'mood'; known axes: aesthetic"),
        (("soul", "eigen", "joy"), "kgents: an eigenvector is written axis=value[:confidence]"),
        (("soul", "show", "--soul", "../x"), "kgents: soul id must be"),
    ],
)
def test_bad_input_is_one_line_and_exit_65_and_changes_nothing(cli: Cli, args: tuple[str, ...], message: str) -> None:
    before = cli.json("soul", "show")["state"]
    code, out, err = cli(*args)
    assert code == ExitCode.DATA_ERROR
    assert err.startswith(message) and err.count("\n") == 1 and "Traceback" not in err and out == ""
    after = cli.json("soul", "show")["state"]
    assert after["revision"] == before["revision"] and after["eigenvectors"] == before["eigenvectors"]


def test_watch_on_the_embedded_default_says_it_needs_redis(cli: Cli) -> None:
    code, out, err = cli("soul", "watch")
    assert code == ExitCode.CONFIG and out == ""
    assert err == (
        "kgents: watching mode changes of other K-gent processes needs Redis: set KGENTS_REDIS_URL"
        " (the embedded spark lives inside one process)\n"
    )


def test_bad_soul_ttl_is_a_config_error(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KGENTS_SOUL_TTL", "forever")
    code, _, err = cli("soul", "show")
    assert code == ExitCode.CONFIG and err.startswith("kgents: KGENTS_SOUL_TTL must be a number of seconds")


def test_with_redis_the_second_run_is_served_from_the_cache(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, spark_prefix: str
) -> None:
    monkeypatch.setenv("KGENTS_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("KGENTS_SPARK_PREFIX", spark_prefix)
    assert cli.json("soul", "mode", "explore")["mode"] == "EXPLORE"
    shown = cli.json("soul", "show")
    assert shown["source"] == "cache" and shown["state"]["mode"] == "EXPLORE"
    assert 0 < shown["cache_ttl_s"] <= 86_400 and shown["spark"].startswith("Redis redis://")
    stats = cli.json("soul", "stats")
    assert stats["backend"] == "redis" and stats["connected_instances"] >= 1 and stats["reachable"] is True


def test_unreachable_redis_for_watch_is_exit_69(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.soul.conftest import free_port

    monkeypatch.setenv("KGENTS_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    code, _, err = cli("soul", "watch")
    assert code == ExitCode.UNAVAILABLE and err.startswith("kgents: KGENTS_REDIS_URL: Redis at redis://127.0.0.1:")
    assert err.count("\n") == 1

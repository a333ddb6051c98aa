"""The `kgents` command line, driven through its real entry point: output, --json, and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kgents.cli.exit_codes import ExitCode, exit_code_for
from kgents.config import Settings
from kgents.errors import BackendUnavailableError, ConfigError, NotFoundError, ValidationError
from tests.helpers import CliHarness as Cli


@pytest.fixture
def cli(anchor_settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(anchor_settings, capsys, monkeypatch)


def test_garden_walk_through(cli: Cli) -> None:
    planted = cli.json(
        "garden",
        "plant",
        "I prefer minimal code",
        "-t",
        "preference",
        "-c",
        "0.65",
        "-T",
        "style",
        "-e",
        "said so",
        "-a",
        "aesthetic=0.2",
    )
    assert isinstance(planted, dict)
    key = planted["id"]
    assert planted["tags"] == ["style"] and planted["eigenvector_affinities"] == {"aesthetic": 0.2}

    nurtured = cli.json("garden", "nurture", key[:8], "-e", "again")
    assert isinstance(nurtured, dict)
    assert nurtured["confidence"] == pytest.approx(0.7) and nurtured["lifecycle"] == "TREE"

    code, out, _ = cli("garden", "grow", key[:8])
    assert code == 0 and "FLOWER" in out
    listed = cli.json("garden", "list", "--lifecycle", "flower")
    assert isinstance(listed, dict) and listed["total"] == 1
    code, out, _ = cli("garden", "list")
    assert code == 0 and "minimal code" in out and key[:8] in out
    code, out, _ = cli("garden", "show", key)
    assert code == 0 and "said so" in out
    code, out, _ = cli("garden", "compost", key[:8])
    assert code == 0 and "composted" in out
    history = cli.json("garden", "history", key[:8])
    assert isinstance(history, list)
    assert [h["operation"] for h in history] == ["INSERT", "UPDATE", "UPDATE", "UPDATE"]
    code, out, _ = cli("garden", "history", key)
    assert code == 0 and "lifecycle" in out

    code, _, err = cli("garden", "delete", key)
    assert code == ExitCode.USAGE and "--yes" in err
    code, _, _ = cli("garden", "delete", key, "--yes")
    assert code == 0
    code, _, err = cli("garden", "show", key)
    assert code == ExitCode.NOT_FOUND and err.count("\n") == 1
    assert len(cli.json("garden", "history", key)) == 5  # type: ignore[arg-type]


def test_db_commands(cli: Cli) -> None:
    code, out, _ = cli("db", "migrate")
    assert code == 0 and "schema version" in out
    planted = cli.json("garden", "plant", "x marks", "-t", "pattern")
    assert cli.json("db", "info")["outbox_pending"] == 0, "a plant applies its own write to the index"
    cli("garden", "grow", planted["id"])  # written to the anchor; the next drain carries it
    info = cli.json("db", "info")
    assert isinstance(info, dict)
    assert info["persona"] == "kent" and info["entries"] == 1 and info["outbox_pending"] == 1
    assert Path(info["home"]).is_absolute()
    assert info["anchor_bytes_per_entry"] == info["anchor_bytes"] > 0 and info["index_bytes_per_entry"] > 0
    everyone = cli.json("db", "info", "--all-personas")
    assert isinstance(everyone, dict) and everyone["personas"] == {"kent": 1}


def test_db_info_shows_only_this_persona_unless_asked(cli: Cli) -> None:
    cli("garden", "plant", "kent's memory", "-t", "pattern")
    cli("--persona", "ada", "garden", "plant", "ada's memory", "-t", "pattern")
    info = cli.json("db", "info")
    assert isinstance(info, dict)
    assert "personas" not in info and info["entries"] == 1
    code, out, _ = cli("db", "info")
    assert code == 0 and "ada" not in out and "kent (1 entry)" in out and "bytes per entry" in out
    code, out, _ = cli("db", "info", "--all-personas")
    assert code == 0 and "ada (1)" in out and "operator view" in out


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (("garden", "plant", "   "), ExitCode.DATA_ERROR, "content must not be empty"),
        (("garden", "plant", "x", "-t", "opinion"), ExitCode.DATA_ERROR, "entry_type must be one of"),
        (("garden", "plant", "x", "-c", "1.5"), ExitCode.DATA_ERROR, "confidence must be in [0, 1]"),
        (("garden", "plant", "x", "-a", "joy"), ExitCode.DATA_ERROR, "name=value"),
        (("garden", "list", "--order", "mood"), ExitCode.DATA_ERROR, "order must be one of"),
        (("garden", "show", "zz"), ExitCode.DATA_ERROR, "at least 4 characters"),
        (("garden", "show", "abcd1234"), ExitCode.NOT_FOUND, "no garden entry"),
        (
            (
                "garden",
                "frobnicate",
            ),
            ExitCode.USAGE,
            "No such command",
        ),
        (("garden", "plant", "x", "--confidence", "lots"), ExitCode.USAGE, "Invalid value for '--confidence'"),
        (("--persona", "two words", "garden", "list"), ExitCode.USAGE, "persona must be"),
    ],
)
def test_bad_input_is_one_line_and_an_exit_code(cli: Cli, args: tuple[str, ...], code: int, fragment: str) -> None:
    got, _, err = cli(*args)
    assert got == code
    assert fragment in err
    assert err.startswith("kgents: ") and err.count("\n") == 1 and "Traceback" not in err


def test_broken_and_unreachable_urls(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGENTS_")}
    env["KGENTS_HOME"] = str(tmp_path)
    kgents = Path(sys.executable).with_name("kgents")
    for url, code, fragment in (
        ("mysql://nope", ExitCode.CONFIG, "KGENTS_POSTGRES_URL must start with"),
        ("postgresql://kent:hunter2@127.0.0.1:1/test", ExitCode.UNAVAILABLE, "connection refused"),
    ):
        done = subprocess.run(
            [str(kgents), "garden", "list"],
            env=env | {"KGENTS_POSTGRES_URL": url},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == code, done.stderr
        assert fragment in done.stderr and "hunter2" not in done.stderr
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("x"), ExitCode.CONFIG),
        (BackendUnavailableError("x"), ExitCode.UNAVAILABLE),
        (NotFoundError("x"), ExitCode.NOT_FOUND),
        (ValidationError("x"), ExitCode.DATA_ERROR),
        (RuntimeError("x"), ExitCode.INTERNAL),
        (KeyboardInterrupt(), ExitCode.INTERRUPTED),
    ],
)
def test_exit_code_mapping(error: BaseException, code: ExitCode) -> None:
    assert exit_code_for(error) is code


def test_demo_beside_the_users_home_leaves_it_as_it_was(tmp_path: Path) -> None:
    import asyncio

    from kgents.memory import AsyncMemory

    async def mine() -> list[str]:
        async with AsyncMemory(settings=Settings(home=tmp_path, persona="demo")) as memory:
            if not await memory.list():
                await memory.remember("my own entry")
            return [e.content for e in await memory.list()]

    def files() -> dict[str, bytes]:
        return {str(p.relative_to(tmp_path)): p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}

    assert asyncio.run(mine()) == ["my own entry"]
    before = files()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGENTS_")} | {"COLUMNS": "200"}
    kgents = Path(sys.executable).with_name("kgents")
    done = subprocess.run(
        [str(kgents), "--home", str(tmp_path), "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "10. a new session in a new process" in out and "Pattern recall across sessions" in out
    assert "every claim holds" in out and f"SQLite {tmp_path}" not in out  # a home of its own
    assert files() == before  # the user's home: not a byte changed
    assert asyncio.run(mine()) == ["my own entry"]


def test_version_and_bare_groups_answer_without_an_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from kgents import __version__

    cli = Cli(Settings(home=tmp_path / "home"), capsys, monkeypatch)
    assert cli("--version") == (0, f"kgents {__version__}\n", "")
    for group in ((), ("garden",), ("soul",), ("synapse",), ("db",)):
        code, out, err = cli(*group)
        assert code == 0 and err == "", (group, err)
        assert "Usage" in out and "Commands" in out, group
    code, _out, err = cli("garden", "frob")
    assert code == ExitCode.USAGE and err.strip() == "kgents: No such command 'frob'."


def test_an_unknown_affinity_axis_is_refused_like_an_unknown_soul_axis(cli: Cli) -> None:
    code, _, err = cli("garden", "plant", "x", "--affinity", "bad axis=0.5")
    assert code == ExitCode.DATA_ERROR
    assert err == (
        "kgents: unknown eigenvector axis 'bad axis'; known axes: aesthetic, categorical, gratitude, heterarchy,"
        " generativity, joy\n"
    )
    assert cli("soul", "eigen", "bad_axis=0.5")[2] == err.replace("bad axis", "bad_axis")
    assert cli.json("garden", "list")["total"] == 0

"""`kgents workbench` is registered, and a bad option is one plain line, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from kgents.cli.app import app, main
from kgents.cli.exit_codes import ExitCode


def test_workbench_command_is_registered() -> None:
    command = typer.main.get_command(app)
    assert isinstance(command, typer.core.TyperGroup) and "workbench" in command.commands


def test_a_bad_demo_name_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--home", str(tmp_path / "home"), "workbench", "--demo", "sickly"])
    err = capsys.readouterr().err
    assert exited.value.code == ExitCode.USAGE and "Traceback" not in err and "sickly" in err

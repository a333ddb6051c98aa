"""`kgents export`, `import`, `forget` and `garden plant -` / `--file` through the real entry point, both anchors."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from kgents.cli.exit_codes import ExitCode
from kgents.config import Settings
from tests.helpers import CliHarness, kgents_env


@pytest.fixture
def cli(anchor_settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> CliHarness:
    return CliHarness(anchor_settings, capsys, monkeypatch)


def plant_some(cli: CliHarness) -> None:
    for content, kind in (("I prefer minimal code", "preference"), ("Tea, never coffee", "behavior")):
        code, _, err = cli("garden", "plant", content, "--type", kind, "--tag", "x", "--evidence", "said so")
        assert code == 0, err
    key = cli.json("garden", "list")["entries"][0]["id"][:8]
    assert cli("garden", "nurture", key, "--evidence", "again")[0] == 0


def test_export_import_round_trips_byte_for_byte(
    cli: CliHarness, anchor_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plant_some(cli)
    assert cli("soul", "mode", "explore")[0] == 0
    code, exported, err = cli("export", "--persona", "kent")
    assert code == 0, err
    header = json.loads(exported.splitlines()[0])
    assert header == {"entries": 2, "format": "kgents-memory", "persona": "kent", "souls": 1, "version": 1}
    path = tmp_path / "memory.jsonl"
    path.write_text(exported, encoding="utf-8")

    code, out, err = cli("forget", "--persona", "kent", "--yes")
    assert code == 0 and "forgot kent: 2 entries" in out, err
    assert cli.json("garden", "list")["total"] == 0
    code, out, err = cli("import", str(path))
    assert code == 0 and "2 entries added" in out and "1 souls added" in out, err
    assert cli("export")[1] == exported, "byte for byte (into the file's own persona)"
    assert cli("import", str(path))[1].count("already there") == 2, "idempotent"

    other = replace(anchor_settings, home=tmp_path / "other")  # a fresh home (and, on PostgreSQL, the same schema)
    monkeypatch.setenv("KGENTS_HOME", str(other.home))
    if not anchor_settings.postgres_url:
        assert cli("import", str(path))[0] == 0
        assert cli("export", "-p", "kent")[1] == exported
    assert cli("soul", "show", "--json")[0] == 0


def test_import_as_another_persona_in_the_same_home(cli: CliHarness, tmp_path: Path) -> None:
    plant_some(cli)
    path = tmp_path / "kent.jsonl"
    path.write_text(cli("export")[1], encoding="utf-8")
    code, out, err = cli("import", str(path), "--persona", "copy1")
    assert code == 0 and "imported into copy1: 2 entries added, 0 already there" in out, err
    code, out, err = cli("import", str(path), "--persona", "copy1")
    assert code == 0 and "0 entries added, 2 already there" in out, err
    kent = {e["content"]: e for e in cli.json("garden", "list")["entries"]}
    copy = {e["content"]: e for e in cli.json("--persona", "copy1", "garden", "list")["entries"]}
    assert copy.keys() == kent.keys() and not {e["id"] for e in copy.values()} & {e["id"] for e in kent.values()}
    assert [copy[c]["planted_at"] for c in kent] == [kent[c]["planted_at"] for c in kent]


def test_a_bad_line_aborts_the_import_naming_it(cli: CliHarness, tmp_path: Path) -> None:
    plant_some(cli)
    lines = cli("export")[1].splitlines()
    assert cli("forget", "--persona", "kent", "--yes")[0] == 0
    broken = json.loads(lines[2])
    broken["lifecycle"] = "WILTED"
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([lines[0], lines[1], json.dumps(broken)]) + "\n", encoding="utf-8")
    code, _, err = cli("import", str(path))
    assert code == ExitCode.DATA_ERROR and err.startswith("kgents: line 3: lifecycle must be one of"), err
    assert "Traceback" not in err
    assert cli.json("garden", "list")["total"] == 0, "nothing written, not even line 2"


def test_forget_needs_the_persona_and_yes(cli: CliHarness) -> None:
    plant_some(cli)
    code, _, err = cli("forget", "--persona", "kent")
    assert code == ExitCode.USAGE and "--yes" in err
    code, _, err = cli("forget", "--yes")
    assert code == ExitCode.USAGE and "--persona" in err
    assert cli.json("garden", "list")["total"] == 2


def test_plant_reads_stdin_and_files(cli: CliHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    long_text = "A long memory, line one.\n" + "word " * 1900 + "\nthe end"
    monkeypatch.setattr("sys.stdin", io.StringIO(long_text + "\n"))
    planted = cli.json("garden", "plant", "-", "--type", "insight")
    assert planted["content"] == long_text
    path = tmp_path / "note.txt"
    path.write_text("from a file, café\n", encoding="utf-8")
    assert cli.json("garden", "plant", "--file", str(path))["content"] == "from a file, café"
    code, _, err = cli("garden", "plant")
    assert code == ExitCode.USAGE and "--file" in err
    code, _, err = cli("garden", "plant", "--file", str(tmp_path / "missing.txt"))
    assert code == ExitCode.NOT_FOUND and "cannot read" in err  # EX_NOINPUT
    path.write_bytes(b"caf\xe9\n")
    code, _, err = cli("garden", "plant", "--file", str(path))
    assert code == ExitCode.DATA_ERROR and err == f"kgents: {path} is not UTF-8 text: byte 0xe9 at offset 3 (line 1)\n"


def test_import_input_that_is_missing_or_not_utf8_is_named(cli: CliHarness, tmp_path: Path) -> None:
    code, _, err = cli("import", str(tmp_path / "missing.jsonl"))
    assert (code, err) == (
        ExitCode.NOT_FOUND,
        f"kgents: cannot read {tmp_path / 'missing.jsonl'}: No such file or directory\n",
    )
    code, _, err = cli("import", str(tmp_path))
    assert code == ExitCode.NOT_FOUND and "Is a directory" in err
    done = subprocess.run(
        [str(Path(sys.executable).with_name("kgents")), "import", "-"],
        input=b'{"format":"kgents-memory"}\n{"kind":"entry","content":"caf\xe9"}\n',
        env=kgents_env(Settings(home=tmp_path / "home")),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == ExitCode.DATA_ERROR
    assert done.stderr.decode() == "kgents: stdin is not UTF-8 text: byte 0xe9 at offset 57 (line 2)\n"
    assert not (tmp_path / "home").exists()


def test_a_line_separator_inside_content_survives_export_and_import(cli: CliHarness, tmp_path: Path) -> None:
    text = "one\u2028two\u2029three"  # str.splitlines() would cut the JSON line at each of these
    assert cli("garden", "plant", text)[0] == 0
    code, exported, err = cli("export")
    assert code == 0, err
    path = tmp_path / "memory.jsonl"
    path.write_text(exported, encoding="utf-8")
    assert cli("forget", "--persona", "kent", "--yes")[0] == 0
    code, out, err = cli("import", str(path))
    assert code == 0 and "1 entries added" in out, err
    assert [e["content"] for e in cli.json("garden", "list")["entries"]] == [text]

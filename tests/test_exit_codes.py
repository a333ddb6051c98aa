"""Exit codes: one rule per situation, walked case by case through the real entry point on both anchors, and the
README's table naming every code `ExitCode` has (the one mapping is `kgents.cli.exit_codes.exit_code_for`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kgents.cli.exit_codes import ExitCode
from kgents.config import Settings
from tests.helpers import CliHarness

README = Path(__file__).resolve().parent.parent / "README.md"

CASES: list[tuple[str, tuple[str, ...], dict[str, str], ExitCode]] = [
    # situation, argv ({id}: an entry of kent's), extra environment, the one code for it
    ("a missing --yes: forget", ("forget", "--persona", "kent"), {}, ExitCode.USAGE),
    ("a missing --yes: garden delete", ("garden", "delete", "{id}"), {}, ExitCode.USAGE),
    ("a missing --yes: synapse adopt", ("synapse", "adopt"), {}, ExitCode.USAGE),
    ("a bad --persona: the global flag", ("--persona", "bad name", "garden", "list"), {}, ExitCode.USAGE),
    ("a bad --persona: forget's", ("forget", "--persona", "no/way", "--yes"), {}, ExitCode.USAGE),
    ("a bad --persona: export's", ("export", "-p", "-dash-first"), {}, ExitCode.USAGE),
    ("a bad --persona: import's", ("import", "-", "-p", "x" * 65), {}, ExitCode.USAGE),
    ("a bad --persona: token create's", ("token", "create", "-p", "a b"), {}, ExitCode.USAGE),
    ("a bad --persona: mcp's", ("mcp", "--persona", "bad name"), {}, ExitCode.USAGE),
    ("an unknown command", ("garden", "water"), {}, ExitCode.USAGE),
    ("an unknown flag", ("garden", "list", "--colour"), {}, ExitCode.USAGE),
    ("a bad KGENTS_PERSONA (a setting)", ("garden", "list"), {"KGENTS_PERSONA": "bad name"}, ExitCode.CONFIG),
    ("a bad KGENTS_POSTGRES_URL", ("garden", "list"), {"KGENTS_POSTGRES_URL": "mysql://x"}, ExitCode.CONFIG),
    ("forget a persona that never existed", ("forget", "--persona", "nobody", "--yes"), {}, ExitCode.NOT_FOUND),
    ("an entry that is not there", ("garden", "show", "ffffffff"), {}, ExitCode.NOT_FOUND),
    ("an input file that is not there", ("import", "/nonexistent/kent.jsonl"), {}, ExitCode.NOT_FOUND),
    ("nurture --delta below 0", ("garden", "nurture", "{id}", "--delta", "-1"), {}, ExitCode.DATA_ERROR),
    ("a value out of range", ("garden", "plant", "x", "--confidence", "2"), {}, ExitCode.DATA_ERROR),
    ("a persona token that is not there", ("token", "revoke", "abcd1234"), {}, ExitCode.NOT_FOUND),
    ("a reassess that lowers: allowed", ("garden", "reassess", "{id}", "--confidence", "0.1"), {}, ExitCode.OK),
    ("forget a persona that exists", ("forget", "--persona", "kent", "--yes"), {}, ExitCode.OK),
]


@pytest.fixture
def cli(anchor_settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> CliHarness:
    return CliHarness(anchor_settings, capsys, monkeypatch)


def test_one_code_per_situation(cli: CliHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    planted = cli.json("garden", "plant", "I prefer minimal code", "--confidence", "0.8")["id"]
    for situation, argv, env, code in CASES:
        with monkeypatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            got, _, err = cli(*(a.replace("{id}", planted) for a in argv))
        assert got == code, f"{situation}: exit {got}, not {int(code)}: {err}"
        if code != ExitCode.OK:
            assert err.startswith("kgents: ") and len(err.strip().splitlines()) == 1, (situation, err)
    assert cli("garden", "show", planted)[0] == ExitCode.NOT_FOUND, "the last forget took kent's entry"


def test_the_readme_table_names_every_code() -> None:
    text = README.read_text(encoding="utf-8")
    table = text[text.index("| exit | name |") :].split("\n\n", 1)[0]
    rows = {int(m[1]): m[2] for m in re.finditer(r"^\| (\d+) \| `(\w+)` \|", table, re.MULTILINE)}
    assert rows == {code.value: code.name for code in ExitCode}

"""Text that no database can store (lone surrogates: invalid UTF-8 from the command line) and strings where lists
belong are refused as validation errors, before anything is written, on both anchors and through the CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kgents.cli.exit_codes import ExitCode
from kgents.config import Settings
from kgents.errors import ValidationError
from kgents.garden.filters import EntryFilter
from kgents.garden.service import PersonaGarden
from tests.helpers import kgents_env

BAD = "caf\udce9"  # b"caf\xe9" (Latin-1) decoded with surrogateescape, as Python hands invalid UTF-8 argv over


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"content": BAD}, "content is not valid Unicode"),
        ({"tags": ["ok", BAD]}, "a tag is not valid Unicode"),
        ({"evidence": [BAD]}, "evidence is not valid Unicode"),
        ({"tags": "abc"}, "tags must be a list"),
        ({"evidence": "seen twice"}, "evidence must be a list"),
        ({"content": "colour \x1b[31mred"}, "control character U+001B"),
    ],
)
async def test_the_api_refuses_unstorable_text_and_writes_nothing(
    garden: PersonaGarden, fields: dict[str, object], message: str
) -> None:
    values: dict[str, object] = {"content": "a plain memory"} | fields
    content = values.pop("content")
    with pytest.raises(ValidationError, match=re.escape(message)):
        await garden.plant(content, "VALUE", **values)  # type: ignore[arg-type]
    assert await garden.count() == 0
    assert await garden.store.outbox_depth() == 0


async def test_changes_and_queries_refuse_unstorable_text(garden: PersonaGarden) -> None:
    entry = await garden.plant("tabs\tand\nnew lines are fine", "VALUE", tags=["a"], evidence=["line one\nline two"])
    with pytest.raises(ValidationError, match="evidence is not valid Unicode"):
        await garden.nurture(entry.id, evidence=BAD)
    with pytest.raises(ValidationError, match="content is not valid Unicode"):
        await garden.update(entry.id, content=BAD)
    with pytest.raises(ValidationError, match="tags must be a list"):
        await garden.update(entry.id, tags="abc")
    with pytest.raises(ValidationError, match="the text filter is not valid Unicode"):
        await garden.query(EntryFilter(text=BAD))
    with pytest.raises(ValidationError, match="a tag is not valid Unicode"):
        await garden.query(EntryFilter(tags=[BAD]))  # type: ignore[arg-type]
    assert (await garden.get(entry.id)) == entry, "nothing changed"


def test_search_filters_refuse_strings_and_surrogates() -> None:
    with pytest.raises(ValidationError, match="lifecycles must be a list"):
        EntryFilter(lifecycles="SEED")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="a tag is not valid Unicode"):
        EntryFilter(tags=(BAD,))
    assert EntryFilter(lifecycles=("seed",)).lifecycles[0].value == "SEED"


def _kgents(settings: Settings, *args: str | bytes) -> subprocess.CompletedProcess[bytes]:
    kgents = Path(sys.executable).with_name("kgents")
    env = kgents_env(settings) | {"LC_ALL": "C.UTF-8", "PYTHONUTF8": "1"}
    return subprocess.run(
        [os.fsencode(kgents), *(a if isinstance(a, bytes) else a.encode() for a in args)],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_invalid_utf8_arguments_are_a_data_error(anchor_settings: Settings) -> None:
    bad = b"caf\xe9"
    for args, fragment in (
        ((b"garden", b"plant", bad, b"--type", b"VALUE"), b"content is not valid Unicode"),
        ((b"garden", b"plant", b"fine", b"--tag", bad), b"a tag is not valid Unicode"),
        ((b"garden", b"list", b"--text", bad), b"the text filter is not valid Unicode"),
        ((b"garden", b"search", bad), b"the search text is not valid Unicode"),
    ):
        done = _kgents(anchor_settings, *args)
        assert done.returncode == ExitCode.DATA_ERROR, done.stderr
        assert fragment in done.stderr and b"internal error" not in done.stderr
        assert done.stderr.count(b"\n") == 1
    listed = _kgents(anchor_settings, "garden", "list", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout)["total"] == 0, "nothing was planted"

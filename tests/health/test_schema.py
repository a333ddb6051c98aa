"""The JSON of `kgents status --json` (and of triad_health.json) keeps its documented shape: a committed snapshot
of every key path. Changing the shape means bumping SCHEMA_VERSION and the snapshot together
(`KGENTS_UPDATE_SNAPSHOTS=1 pytest tests/health/test_schema.py` rewrites it)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from kgents.config import Settings
from kgents.health.model import SCHEMA_VERSION
from tests.helpers import CliHarness

SNAPSHOT = Path(__file__).parent.parent / "snapshots" / "health_schema.json"


def shape(data: Any, prefix: str = "") -> list[str]:
    """Every key path; lists are described by their first item (`checks.durability:level[]`)."""
    paths: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            path = f"{prefix}.{key}" if prefix else key
            paths.append(path)
            paths += shape(value, path)
    elif isinstance(data, list) and data:
        paths += shape(data[0], prefix + "[]")
    return paths


def test_status_json_schema_is_stable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    update = bool(os.environ.get("KGENTS_UPDATE_SNAPSHOTS"))  # (the harness clears KGENTS_* variables)
    cli = CliHarness(Settings(home=tmp_path / "home"), capsys, monkeypatch)
    code, out, err = cli("status", "--json", "--timeout", "10")
    data = json.loads(out)
    assert code in (0, 1), err
    found = {"schema_version": data["schema_version"], "keys": sorted(shape(data))}
    if update:
        SNAPSHOT.write_text(json.dumps(found, indent=1) + "\n")
    assert data["schema_version"] == SCHEMA_VERSION
    assert found == json.loads(SNAPSHOT.read_text()), "the health JSON changed shape: bump SCHEMA_VERSION"
    assert data["status"] in ("pass", "warn", "fail")
    assert all(p["status"] in ("pass", "warn", "fail") for p in data["parts"].values())

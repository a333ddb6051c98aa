"""`kgents demo` plays the whole scenario and exits 0: on the embedded default, and on PostgreSQL + Redis."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kgents.config import Settings
from tests.helpers import PG_URL, REDIS_URL, kgents_env, unique_name

KGENTS = str(Path(sys.executable).with_name("kgents"))


def _demo(env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run([KGENTS, "demo", "--json"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    data: dict[str, object] = json.loads(done.stdout)
    return data


def test_demo_on_the_embedded_default(tmp_path: Path) -> None:
    home = tmp_path / "mine"
    data = _demo(kgents_env(Settings(home=home)))
    assert data["ok"] is True and len(data["steps"]) >= 10  # type: ignore[arg-type]
    assert not home.exists()  # a throwaway home: the user's own is never touched


def test_demo_on_postgres_and_redis(tmp_path: Path, pg_schema: str) -> None:
    env = kgents_env(Settings(home=tmp_path / "home", postgres_url=PG_URL, postgres_schema=pg_schema))
    env |= {"KGENTS_REDIS_URL": REDIS_URL, "KGENTS_SPARK_PREFIX": unique_name("kgdemo")}
    data = _demo(env)
    assert data["ok"] is True
    assert any("PostgreSQL" in str(s) for s in data["steps"])  # type: ignore[attr-defined]

"""Test helpers: waiting on conditions with a deadline (never fixed sleeps), throwaway names."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from kgents.config import Settings

T = TypeVar("T")

PG_URL = os.environ.get("KGENTS_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
REDIS_URL = os.environ.get("KGENTS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def unique_name(prefix: str) -> str:
    """A lower-case identifier unique to this test run (schema names, key prefixes)."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


async def wait_until(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool] = bool,
    *,
    timeout: float = 10.0,
    interval: float = 0.01,
    what: str = "condition",
) -> T:
    """Poll `probe` until `accept(result)`; fail with the last result once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if accept(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:g} s; last value: {result!r}")
        await asyncio.sleep(interval)


def wait_until_sync(
    probe: Callable[[], T], accept: Callable[[T], bool] = bool, *, timeout: float = 10.0, what: str = "condition"
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if accept(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:g} s; last value: {result!r}")
        time.sleep(0.01)


def kgents_env(settings: Settings, persona: str = "kent") -> dict[str, str]:
    """This process's environment without any KGENTS_* variable, plus the ones that name `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGENTS_")}
    env |= {"KGENTS_HOME": str(settings.home), "KGENTS_PERSONA": persona, "COLUMNS": "120"}
    if settings.postgres_url:
        env |= {"KGENTS_POSTGRES_URL": settings.postgres_url, "KGENTS_POSTGRES_SCHEMA": settings.postgres_schema}
    return env


class CliHarness:
    """Runs `kgents` through its real entry point (`kgents.cli.app.main`) in this process, with `settings`."""

    def __init__(self, settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
        self.capsys = capsys
        self.monkeypatch = monkeypatch
        for key in [k for k in os.environ if k.startswith("KGENTS_")]:
            monkeypatch.delenv(key)
        for key, value in kgents_env(settings).items():
            if key.startswith("KGENTS_") or key == "COLUMNS":
                monkeypatch.setenv(key, value)

    def __call__(self, *args: str) -> tuple[int, str, str]:
        """Exit code, stdout and stderr of `kgents *args`."""
        from kgents.cli.app import main

        self.capsys.readouterr()
        with pytest.raises(SystemExit) as done:
            main(list(args))
        out, err = self.capsys.readouterr()
        return int(done.value.code or 0), out, err

    def json(self, *args: str) -> Any:
        code, out, err = self(*args, "--json")
        assert code == 0, err
        return json.loads(out)

"""Test helpers: waiting on conditions with a deadline (never fixed sleeps), throwaway names."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

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

"""Soul test fixtures: a throwaway Redis key prefix, the Spark adapters, and a private redis-server to break.

Local to tests/soul/ (the shared tests/conftest.py stays small). The shared Redis is
never flushed: each run deletes only the keys under its own prefix. Outages are staged on a private
`redis-server` on a free loopback port, started and stopped here.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from kgents.config import Settings
from kgents.soul.service import SoulService
from kgents.soul.session import open_service
from tests.helpers import REDIS_URL, unique_name

SPARKS = ["redis", "embedded"]


def delete_prefix(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"kgents:{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def spark_prefix() -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards (never FLUSHALL on the shared server)."""
    prefix = unique_name("t")
    yield prefix
    delete_prefix(REDIS_URL, prefix)


@pytest.fixture(params=SPARKS)
def soul_settings(request: pytest.FixtureRequest, anchor_settings: Settings, spark_prefix: str) -> Settings:
    """Settings for each Spark (Redis, embedded) over each anchor (SQLite, PostgreSQL)."""
    redis_url = REDIS_URL if request.param == "redis" else None
    return replace(anchor_settings, redis_url=redis_url, spark_prefix=spark_prefix, persona="kent")


@pytest.fixture
async def service(soul_settings: Settings) -> AsyncIterator[SoulService]:
    opened = await open_service(soul_settings, strict_spark=True)
    try:
        yield opened
    finally:
        await opened.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """A redis-server of this test alone (no persistence), to restart or flush without disturbing anyone."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
                client.ping()
                client.close()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise AssertionError("private redis-server did not start within 10 s") from None
                time.sleep(0.02)

    def pause(self) -> None:
        """SIGSTOP: the server still accepts connections (the kernel does) but answers nothing, as in a stall."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGCONT)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)

    def stop(self) -> None:
        if self.process is not None:
            self.resume()  # a stopped process cannot act on SIGTERM
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def flushall(self) -> None:
        client = redis.Redis(port=self.port)
        client.flushall()
        client.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    folder = tmp_path / "redis"
    folder.mkdir()
    server = PrivateRedis(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()

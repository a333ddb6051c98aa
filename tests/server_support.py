"""A real `kgents serve` process for tests: started on a free loopback port, found through its server file,
stopped with SIGTERM (a test that wants to see how it stops does so itself)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kgents.config import Settings
from kgents.home.discovery import ServerInfo, home_server, read_server_file
from tests.helpers import kgents_env, wait_until_sync

KGENTS = Path(sys.executable).with_name("kgents")
START_TIMEOUT_S = 60.0


@dataclass
class ServerProcess:
    proc: subprocess.Popen[str]
    info: ServerInfo
    settings: Settings

    @property
    def url(self) -> str:
        return self.info.url

    @property
    def token(self) -> str:
        return self.info.token

    def stop(self, timeout: float = 30.0) -> tuple[int, str, str]:
        """SIGTERM, then the exit code, stdout and stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err


def start_server(settings: Settings, *args: str, env: dict[str, str] | None = None) -> ServerProcess:
    """`kgents serve --port 0` (or `args`) for `settings`' home; returns once its server file names a live
    server."""
    command = [str(KGENTS), *(args or ("serve", "--port", "0"))]
    token = {"KGENTS_SERVER_TOKEN": settings.server_token} if settings.server_token else {}
    proc = subprocess.Popen(
        command,
        env=kgents_env(settings) | token | (env or {}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def found() -> ServerInfo | None:
        if proc.poll() is not None:
            raise AssertionError(f"kgents serve exited {proc.returncode}: {proc.communicate()[1]}")
        data = read_server_file(settings)
        return home_server(settings) if data is not None and data["pid"] == proc.pid else None

    try:
        info = wait_until_sync(found, lambda s: s is not None, timeout=START_TIMEOUT_S, what="the server file")
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.communicate()
        raise
    assert info is not None
    return ServerProcess(proc, info, settings)


def cli(
    settings: Settings, *args: str, timeout: float = 120.0, persona: str = "kent"
) -> subprocess.CompletedProcess[str]:
    """`kgents *args` as a separate process on `settings`' home, as `persona` (KGENTS_PERSONA)."""
    return subprocess.run(
        [str(KGENTS), *args], env=kgents_env(settings, persona), capture_output=True, text=True, timeout=timeout
    )


@contextlib.contextmanager
def running_server(settings: Settings, *args: str, env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    server = start_server(settings, *args, env=env)
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            server.proc.send_signal(signal.SIGTERM)
            try:
                server.proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                server.proc.communicate()

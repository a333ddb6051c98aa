"""A private PostgreSQL cluster on a free loopback port, for tests (and the fault campaign) that stop and restart
the database: the shared server on 5432 is never restarted. Made with the Debian binaries of PostgreSQL 15; as
root the cluster runs as the `postgres` user. `private_postgres()` skips the test when this machine cannot make
one."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BIN = Path(os.environ.get("KGENTS_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


class Unavailable(Exception):
    """This machine cannot run a private cluster (the reason says why)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PrivatePostgres:
    folder: Path
    port: int
    user: str | None
    """The user the cluster runs as (None: this process's own)."""

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(BIN / args[0]), *args[1:]]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl", "-D", str(self.folder / "data"), "-o", options, "-l", str(self.folder / "log"), "-w", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        """`fast` (connections terminated, a clean shutdown) or `immediate` (as a crash)."""
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", mode, "-w", "stop", check=False)

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()


def _cluster_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise Unavailable("running as root and there is no `postgres` user to run a cluster as") from None
    if shutil.which("runuser") is None:
        raise Unavailable("running as root without `runuser`")
    return "postgres"


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A fresh cluster, started; stopped and removed afterwards. Raises Unavailable when none can be made."""
    if not (BIN / "initdb").exists():
        raise Unavailable(f"no PostgreSQL binaries under {BIN}")
    user = _cluster_user()
    folder = Path(tempfile.mkdtemp(prefix="kgents-pg-"))
    try:
        if user is not None:
            shutil.chown(folder, user)
        cluster = PrivatePostgres(folder, free_port(), user)
        made = cluster._run(
            "initdb",
            "-D",
            str(folder / "data"),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
            check=False,
        )
        if made.returncode != 0:
            raise Unavailable(f"initdb failed: {made.stderr.strip()[:200]}")
        cluster.start()
        try:
            yield cluster
        finally:
            cluster.stop("immediate")
    finally:
        shutil.rmtree(folder, ignore_errors=True)

"""PostgreSQL faults for one process only: find the backends serving a given process (by the local ports of its
TCP sockets, read from /proc) and terminate them, the way a restart drops them, without touching any other
client of the shared server (never a restart of the shared PostgreSQL)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def local_ports(pid: int) -> set[int]:
    """The local TCP ports of the sockets process `pid` holds open."""
    inodes: set[str] = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports: set[int] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


async def backends_of(admin: Any, pid: int) -> list[int]:
    """The PostgreSQL backend pids serving process `pid` (an asyncpg connection `admin` asks)."""
    ports = sorted(local_ports(pid))
    rows = await admin.fetch(
        "SELECT pid FROM pg_stat_activity WHERE client_port = ANY($1::int[]) AND pid <> pg_backend_pid()", ports
    )
    return [r["pid"] for r in rows]


async def terminate_backends_of(admin: Any, pid: int) -> int:
    """Terminate every backend serving process `pid`; how many there were."""
    backends = await backends_of(admin, pid)
    for backend in backends:
        await admin.fetchval("SELECT pg_terminate_backend($1)", backend)
    return len(backends)

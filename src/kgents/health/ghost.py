"""GhostWriter: the triad's health as small files under `KGENTS_HOME/ghost/` for IDE status bars and scripts.

- `triad_health.json`: the full TriadHealth, with `written_at` and `valid_until` (a file past its validity reads as
  UNKNOWN: its writer stopped);
- `health.status`: one line, `triad:HEALTHY` or `triad:STRAINED drift:33%`;
- `thought_stream.md`: a line appended only when the level moves into or out of DEGRADED / CRITICAL (the last
  level is kept in `ghost_state.json`, so repeated runs append nothing new).

Files are written to a temporary file and renamed (a reader never sees half a file), created 0600 in a 0700
folder, and pass through `scrub` (no password of a URL ever lands in them).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from kgents.clock import utcnow
from kgents.health.collect import scrub
from kgents.health.model import SCHEMA_VERSION, Level, TriadHealth, parse_level
from kgents.home import private_dir, write_private

GHOST_DIR = "ghost"
HEALTH_JSON = "triad_health.json"
STATUS_LINE = "health.status"
THOUGHTS = "thought_stream.md"
STATE = "ghost_state.json"
DEFAULT_INTERVAL_S = 30.0
VALIDITY_FACTOR = 3.0
"""A file stays valid for this many intervals (a daemon that missed two ticks is still believed)."""
MIN_VALIDITY_S = 60.0


def ghost_dir(home: Path) -> Path:
    return home / GHOST_DIR


def validity_s(interval_s: float) -> float:
    return max(MIN_VALIDITY_S, interval_s * VALIDITY_FACTOR)


def status_line(health: TriadHealth) -> str:
    """`triad:HEALTHY`, or with the index's drift when it is not fully coherent: `triad:STRAINED drift:33%`."""
    line = f"triad:{health.level.value}"
    drift = health.drift
    if drift is not None and drift > 0:
        line += f" drift:{drift * 100:.0f}%"
    return line


@dataclass(frozen=True, slots=True)
class GhostRead:
    """What a reader of the ghost files learns: the level (UNKNOWN when stale or missing) and the health."""

    level: Level
    health: TriadHealth | None
    stale: bool
    reason: str


def append_line(path: Path, text: str) -> None:
    """Append one line with a single write on an O_APPEND descriptor (0600 when created)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def thought(previous: Level | None, current: Level, health: TriadHealth) -> str | None:
    """The thought-stream line for a move into or out of DEGRADED / CRITICAL, None for any other tick."""
    if previous is current:
        return None
    was = previous is not None and previous.alerting
    if not (was or current.alerting):
        return None
    stamp = health.measured_at.isoformat(timespec="seconds")
    before = "unknown" if previous is None else previous.value
    if current.alerting:
        return (
            f"- {stamp} #alert #infrastructure Triad health: {current.value} (was {before}): {health.verdict.reason}\n"
        )
    return f"- {stamp} #recovered #infrastructure Triad health: {current.value} (was {before})\n"


def write_ghost(home: Path, health: TriadHealth, interval_s: float = DEFAULT_INTERVAL_S) -> list[str]:
    """Write the three files for `health`; returns the thought-stream lines appended (none on most ticks)."""
    folder = private_dir(ghost_dir(home))
    written = utcnow()
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "written_at": written.isoformat(),
        "valid_until": (written + timedelta(seconds=validity_s(interval_s))).isoformat(),
        "health": health.to_dict(),
    }
    write_private(folder / HEALTH_JSON, scrub(json.dumps(document, indent=2, ensure_ascii=False, default=str)) + "\n")
    write_private(folder / STATUS_LINE, scrub(status_line(health)) + "\n")
    previous = _last_level(folder)
    line = thought(previous, health.level, health)
    if line is not None:
        append_line(folder / THOUGHTS, scrub(line))
    if previous is not health.level:
        write_private(folder / STATE, json.dumps({"level": health.level.value, "at": written.isoformat()}) + "\n")
    return [] if line is None else [line]


def _last_level(folder: Path) -> Level | None:
    try:
        data = json.loads((folder / STATE).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return parse_level(data.get("level")) if isinstance(data, dict) else None


def read_ghost(home: Path, now: datetime | None = None) -> GhostRead:
    """The health the ghost files hold; UNKNOWN when missing, unreadable, or past `valid_until`."""
    now = now or utcnow()
    path = ghost_dir(home) / HEALTH_JSON
    try:
        document = json.loads(path.read_text("utf-8"))
        health = TriadHealth.from_dict(document["health"])
        valid_until = datetime.fromisoformat(str(document["valid_until"]))
    except FileNotFoundError:
        return GhostRead(Level.UNKNOWN, None, True, f"no ghost file at {path}: run `kgents ghost`")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return GhostRead(Level.UNKNOWN, None, True, f"unreadable ghost file {path}: {type(exc).__name__}")
    if now > valid_until:
        return GhostRead(Level.UNKNOWN, health, True, f"stale: valid until {valid_until.isoformat()}")
    return GhostRead(health.level, health, False, health.verdict.reason)

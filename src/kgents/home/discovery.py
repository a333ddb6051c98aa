"""How kgents processes find the server of their home: the token file and the server file under KGENTS_HOME.

`kgents serve` writes `server.json` (URL, pid, start time; 0600) once it listens, and removes it when it stops. A
file whose pid is gone, or whose URL does not answer `/livez`, is stale: it is ignored, and the next server
replaces it. The bearer token lives in `server.token` (0600, generated on first use) unless KGENTS_SERVER_TOKEN
gives it. Nothing here imports the server itself, so clients stay light.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kgents.config import Settings, check_server_token
from kgents.errors import ConfigError
from kgents.home import ensure_home, write_private

SERVER_FILE = "server.json"
TOKEN_FILE = "server.token"
LIVEZ_TIMEOUT_S = 1.0
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
PERSONA_TOKEN_PREFIX = "kgt_"
"""How a persona token (`kgents token create`) begins; the operator token is anything else."""


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """A server to talk to: its base URL, its token (never printed), and the pid when it is this home's own."""

    url: str
    token: str
    pid: int | None = None
    started_at: float | None = None

    def __repr__(self) -> str:
        return f"ServerInfo(url={self.url!r}, pid={self.pid})"


def is_persona_token(token: str) -> bool:
    """Whether `token` is shaped like a persona token (the server alone knows whether it opens anything)."""
    return token.startswith(PERSONA_TOKEN_PREFIX)


def server_file(settings: Settings) -> Path:
    return settings.home / SERVER_FILE


def token_file(settings: Settings) -> Path:
    return settings.home / TOKEN_FILE


def read_token(settings: Settings) -> str | None:
    """KGENTS_SERVER_TOKEN, else the home's token file, else None."""
    if settings.server_token:
        return settings.server_token
    try:
        text = token_file(settings).read_text().strip()
    except OSError:
        return None
    return text or None


PLACEHOLDER_MARKS = ("change-me", "changeme", "change_me", "replace-me", "replace_me", "placeholder", "your-token")
"""What the example tokens of docs and manifests say (deploy/k8s/secret.example.yaml's among them): a server
refuses a token that holds one, as it refuses one under 16 characters."""
MIN_DISTINCT = 8


def check_serving_token(token: str) -> str:
    """The token `kgents serve` requires of itself: 16-512 visible characters, not an example's placeholder, not
    one character repeated, not a persona token; the error names the setting, never the token."""
    check_server_token(token)
    if any(mark in token.lower() for mark in PLACEHOLDER_MARKS):
        raise ConfigError(
            "KGENTS_SERVER_TOKEN is an example's placeholder, not a secret: set a random one (openssl rand -hex 24)"
        )
    if len(set(token)) < MIN_DISTINCT:
        raise ConfigError(
            f"KGENTS_SERVER_TOKEN has fewer than {MIN_DISTINCT} different characters: set a random one"
            " (openssl rand -hex 24)"
        )
    if is_persona_token(token):
        raise ConfigError("KGENTS_SERVER_TOKEN is a persona token (kgt_…); the server's own token must be another")
    return token


def ensure_token(settings: Settings) -> str:
    """The token a server requires (`check_serving_token`): KGENTS_SERVER_TOKEN, else the token file (generated on
    first use; of two processes generating it at once, the first one's stays and both use it)."""
    found = read_token(settings)
    if found is not None:
        return check_serving_token(found)
    try:
        with contextlib.suppress(FileExistsError):
            write_private(ensure_home(settings.home) / TOKEN_FILE, secrets.token_urlsafe(32) + "\n", exclusive=True)
        found = read_token(settings)
    except OSError as exc:
        raise ConfigError(
            f"KGENTS_HOME: cannot write the server token file {token_file(settings)} ({exc.strerror});"
            " set KGENTS_SERVER_TOKEN instead"
        ) from None
    if found is None:
        raise ConfigError(f"KGENTS_HOME: the server token file {token_file(settings)} is empty; remove it")
    return check_serving_token(found)


def read_server_file(settings: Settings) -> dict[str, Any] | None:
    try:
        data = json.loads(server_file(settings).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("url"), str) or not isinstance(data.get("pid"), int):
        return None
    return data


def write_server_file(settings: Settings, url: str) -> None:
    record = {"url": url, "pid": os.getpid(), "started_at": time.time()}
    write_private(ensure_home(settings.home) / SERVER_FILE, json.dumps(record) + "\n")


def remove_server_file(settings: Settings) -> None:
    """Remove the server file if it is this process's own (a newer server's stays)."""
    data = read_server_file(settings)
    if data is not None and data.get("pid") == os.getpid():
        with contextlib.suppress(OSError):
            server_file(settings).unlink()


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def answers_livez(url: str, timeout_s: float = LIVEZ_TIMEOUT_S) -> bool:
    """Whether `url` answers GET /livez. The standard library's http.client: every CLI command asks this, and
    importing httpx cost each one ~0.1 s."""
    import http.client

    parts = urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    try:
        connection = kind(parts.hostname or "", parts.port, timeout=timeout_s)
        try:
            connection.request("GET", parts.path.rstrip("/") + "/livez")
            return connection.getresponse().status == 200
        finally:
            connection.close()
    except (OSError, http.client.HTTPException, ValueError):
        return False


def home_server(settings: Settings) -> ServerInfo | None:
    """This home's own live server (from its server file), or None when there is none or the file is stale."""
    data = read_server_file(settings)
    if data is None or data["pid"] == os.getpid() or not pid_alive(data["pid"]):
        return None
    if not answers_livez(data["url"]):
        return None
    token = read_token(settings)
    if token is None:
        return None
    return ServerInfo(data["url"], token, data["pid"], data.get("started_at"))


def find_server(settings: Settings) -> ServerInfo | None:
    """The server this process should go through: KGENTS_SERVER_URL when set, else the home's live server."""
    if settings.server_url:
        token = read_token(settings)
        if token is None:
            raise ConfigError("KGENTS_SERVER_URL is set but no token is: set KGENTS_SERVER_TOKEN")
        return ServerInfo(settings.server_url, token)
    return home_server(settings)

"""Running `kgents serve`: bind, serve the app under uvicorn, relay in-process on the embedded default, announce
the server in the home's server file, and stop gracefully on SIGTERM / SIGINT (the relay finishes its batch).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import uvicorn

from kgents.config import Settings
from kgents.errors import BackendUnavailableError, ConfigError, IndexLockedError
from kgents.server.discovery import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    ServerInfo,
    ensure_token,
    home_server,
    remove_server_file,
    write_server_file,
)

GRACEFUL_STOP_S = 10
"""How long open requests may take to finish once a stop was asked for."""
KEEP_ALIVE_S = 65
"""How long an idle client connection stays open: longer than `RemoteMemory` keeps one idle (60 s), so a face
that asks every few seconds (a chat turn, a status refresh) reuses its connection instead of paying a new one
(~0.25 ms on loopback)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(host: str, settings: Settings) -> None:
    """Anything but loopback needs a token the operator chose (KGENTS_SERVER_TOKEN), not a generated one."""
    if not is_loopback(host) and not settings.server_token:
        raise ConfigError(
            f"--host {host} is not loopback: set KGENTS_SERVER_TOKEN explicitly to serve beyond this machine"
        )


def base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def bind(host: str, port: int) -> socket.socket:
    """The listening socket. Its protocol is named (IPPROTO_TCP, not 0): asyncio sets TCP_NODELAY only on
    connections of such a socket, and without it every response (headers, then body) waits ~40 ms for a
    delayed ACK."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling (`serve` installs handlers that also stop the relay), telling
    when it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.listening.set()


@dataclass
class Serving:
    """A running server, for the caller's announcement line."""

    url: str
    settings: Settings
    relaying: bool


def other_server(settings: Settings) -> ServerInfo | None:
    """The home's live server, if any. On the embedded default one process owns the index, so a second server is
    refused by name; with the real triad many may run, and the first keeps the server file."""
    running = home_server(settings)
    if running is not None and not settings.qdrant_url:
        raise IndexLockedError(
            f"a kgents server already serves KGENTS_HOME {settings.home} at {running.url} (pid {running.pid})"
        )
    return running


async def serve(
    settings: Settings,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    announce: Callable[[Serving], None] | None = None,
) -> int:
    """Serve until SIGTERM / SIGINT; returns the outbox events its in-process relay completed. The index is
    opened (and on the embedded default owned) before the port is bound, so a second server fails fast with the
    owner's name."""
    from kgents.server.app import build_app
    from kgents.server.hub import MemoryHub

    check_host(host, settings)
    token = ensure_token(settings)
    first = other_server(settings) is None
    hub = await MemoryHub.open(settings)
    try:
        sock = bind(host, port)
        url = base_url(sock)
        app = build_app(hub, token, mounts=hub.mounts())
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            http="httptools",
            proxy_headers=False,  # nothing here reads the client's address: no X-Forwarded-* rewriting per request
            server_header=False,
            timeout_graceful_shutdown=GRACEFUL_STOP_S,
            timeout_keep_alive=KEEP_ALIVE_S,
        )
        server = _Server(config)

        def stop() -> None:
            server.should_exit = True
            hub.stop_relay()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        hub.start_relay()
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            listening = asyncio.create_task(server.listening.wait())
            await asyncio.wait([listening, serving], return_when=asyncio.FIRST_COMPLETED)
            listening.cancel()
            if server.started:
                if first:
                    write_server_file(settings, url)
                if announce is not None:
                    announce(Serving(url, settings, hub.relaying))
            await serving
            if not server.started:
                raise BackendUnavailableError("kgents serve could not start its app (the lines above say why)")
        finally:
            remove_server_file(settings)
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            sock.close()
    finally:
        await hub.close()  # stops the relay after its batch in flight, then closes the stores
    return hub.relayed

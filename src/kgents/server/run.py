"""Running `kgents serve`: bind, serve the app under uvicorn, relay in-process on the embedded default, announce
the server in the home's server file, and stop gracefully on SIGTERM / SIGINT (the relay finishes its batch).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import uvicorn

from kgents.config import Settings
from kgents.errors import BackendUnavailableError, ConfigError, IndexLockedError
from kgents.home.discovery import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    ServerInfo,
    ensure_token,
    home_server,
    remove_server_file,
    write_server_file,
)
from kgents.home.owner import OWNER_WAIT_S, Progress, server_or_own

if TYPE_CHECKING:
    from kgents.server.hub import MemoryHub

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


def already_served(settings: Settings, running: ServerInfo) -> IndexLockedError:
    return IndexLockedError(
        f"a kgents server already serves KGENTS_HOME {settings.home} at {running.url} (pid {running.pid})"
    )


async def open_hub(
    settings: Settings, *, wait_s: float = OWNER_WAIT_S, progress: Progress | None = None
) -> tuple[MemoryHub, bool]:
    """The stack a server serves, and whether it is the home's first server (it then announces itself). On the
    embedded default one process owns the index, so a second server is refused by name, also when the first is
    still starting (it holds the index before it announces itself: wait for the one or the other); with the real
    triad many may run, and the first keeps the server file."""
    from kgents.server.hub import MemoryHub

    if settings.qdrant_url:
        first = home_server(settings) is None
        return await MemoryHub.open(settings), first
    opened = await server_or_own(
        settings, lambda: MemoryHub.open(settings), wait_s=wait_s, progress=progress, find=home_server
    )
    if isinstance(opened, ServerInfo):
        raise already_served(settings, opened)
    return opened, True


class Hosted:
    """The app of a hub, serving on its socket until `stop()`."""

    def __init__(self, server: _Server, task: asyncio.Task[None], url: str) -> None:
        self.url = url
        self._server = server
        self._task = task

    def stop(self) -> None:
        """Ask the server to stop (safe from a signal handler); open requests get GRACEFUL_STOP_S to finish."""
        self._server.should_exit = True

    async def wait(self) -> None:
        """Until the server stopped."""
        await asyncio.shield(self._task)


@contextlib.asynccontextmanager
async def hosting(
    hub: MemoryHub, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, announce_file: bool = True
) -> AsyncIterator[Hosted]:
    """Serve `hub`'s app on `host:port` with its relay running, named in the home's server file (`announce_file`)
    once it listens; on the way out the file goes, the server stops (requests in flight finish) and the relay
    stops after its batch in flight. The hub stays open: its opener closes it."""
    from kgents.server.app import build_app
    from kgents.server.slow_clients import GuardedHttpToolsProtocol

    settings = hub.settings
    token = ensure_token(settings)
    sock = bind(host, port)
    try:
        url = base_url(sock)
        app = build_app(hub, token, mounts=hub.mounts())
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            http=GuardedHttpToolsProtocol,  # httptools, with deadlines for a request's head and body
            proxy_headers=False,  # nothing here reads the client's address: no X-Forwarded-* rewriting per request
            server_header=False,
            timeout_graceful_shutdown=GRACEFUL_STOP_S,
            timeout_keep_alive=KEEP_ALIVE_S,
        )
        server = _Server(config)
        hub.start_relay()
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            listening = asyncio.create_task(server.listening.wait())
            await asyncio.wait([listening, serving], return_when=asyncio.FIRST_COMPLETED)
            listening.cancel()
            if not server.started:
                await serving
                raise BackendUnavailableError("the kgents server could not start its app (the lines above say why)")
            if announce_file:
                write_server_file(settings, url)
            yield Hosted(server, serving, url)
        finally:
            remove_server_file(settings)
            server.should_exit = True
            hub.stop_relay()
            await serving
    finally:
        sock.close()


async def serve(
    settings: Settings,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    announce: Callable[[Serving], None] | None = None,
    progress: Progress | None = None,
) -> int:
    """Serve until SIGTERM / SIGINT; returns the outbox events its in-process relay completed. The index is
    opened (and on the embedded default owned) before the port is bound, so a second server fails with the
    first one's name."""
    check_host(host, settings)
    ensure_token(settings)  # a placeholder or weak KGENTS_SERVER_TOKEN is refused before anything is opened
    hub, first = await open_hub(settings, progress=progress)
    try:
        async with hosting(hub, host=host, port=port, announce_file=first) as hosted:

            def stop() -> None:
                hosted.stop()
                hub.stop_relay()

            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop)
            try:
                if announce is not None:
                    announce(Serving(hosted.url, settings, hub.relaying))
                await hosted.wait()
            finally:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
    finally:
        await hub.close()  # stops the relay after its batch in flight, then closes the stores
    return hub.relayed

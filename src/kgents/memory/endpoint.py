"""The server a `RemoteMemory` talks to, what a failed request means, and finding the home's next server.

A request that never left (the server refused the connection) changed nothing: `unavailable`. A write that left
and lost its answer (the connection dropped, the server died or stalled) may have been carried out: that is
`OutcomeUnknownError`, never a plain "cannot connect" a caller would read as "not done". A write the server itself
could not settle comes back as its own code (`outcome_unknown`); an idempotent one (a `remember` under its entry id,
a `forget`) is sent again a few times, so a short outage of the database behind the server resolves it.

A memory that found its server by discovery (the home's server file, not KGENTS_SERVER_URL) follows the home: when
that server stops, the next request goes to the server that took over; when none runs, `ServerGoneError` tells the
owner of the memory (`Memory`) to open it again (through a new server, or in this process), and a request that
may be resent is sent there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from kgents.config import Settings, redact_url
from kgents.errors import BackendUnavailableError, OutcomeUnknownError
from kgents.memory.http_client import HttpClient, HttpError, HttpResponse
from kgents.server.discovery import ServerInfo, find_server

RESEND_DELAYS_S = (0.1, 0.3, 0.6, 1.0)
"""Waits before sending an idempotent write again after the server answered `outcome_unknown` (about 2 s in all:
a database restart's usual length)."""
OUTCOME_UNKNOWN = "outcome_unknown"
MAX_MOVES = 8
"""Server changes (and resends) one request may go through before it gives up."""


class ServerGoneError(BackendUnavailableError):
    """The home's server this memory went through has stopped and no other one runs; the request was not carried
    out, or may be sent again safely. Open the memory again (`Memory` does so by itself)."""


def where(server: ServerInfo) -> str:
    """Where a server was found, for messages: KGENTS_SERVER_URL, or the home's server file."""
    if server.pid is None:
        return f"the kgents server at {redact_url(server.url)} (KGENTS_SERVER_URL)"
    return f"this home's kgents server at {redact_url(server.url)} (pid {server.pid})"


class Endpoint:
    """Requests to one server, each carrying the bearer token; `settings`: follow the home's server when it
    changes (only for a server found through the home's server file)."""

    def __init__(self, server: ServerInfo, *, timeout_s: float, settings: Settings | None = None) -> None:
        self.server = server
        self.timeout_s = timeout_s
        self.client = self._client_for(server)
        self._settings = settings if server.pid is not None else None
        self._gone = False
        self.find: Callable[[Settings], ServerInfo | None] = find_server

    def _client_for(self, server: ServerInfo) -> HttpClient:
        return HttpClient(server.url, {"Authorization": f"Bearer {server.token}"}, timeout_s=self.timeout_s)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def request(
        self, method: str, path: str, payload: bytes | None, *, resend: bool, writes: bool
    ) -> HttpResponse:
        """One request's answer (any status). `resend`: sending it twice does it once (a read, or an idempotent
        write); `writes`: a lost answer leaves a change in doubt."""
        delays = iter(RESEND_DELAYS_S if resend and writes else ())
        for _ in range(MAX_MOVES + 1):
            if self._gone:
                await self._follow(sent=False, resend=resend, writes=writes, cause=None)
            try:
                response = await self.client.request(method, path, payload, idempotent=resend)
            except HttpError as exc:
                moved = await self._follow(sent=exc.sent, resend=resend, writes=writes, cause=exc)
                if moved and (resend or not exc.sent):
                    continue
                raise self._lost(exc, writes) from None
            delay = next(delays, None) if response.status == 503 and OUTCOME_UNKNOWN.encode() in response.body else None
            if delay is None:
                return response
            await asyncio.sleep(delay)
        raise BackendUnavailableError(f"the home's kgents server changed {MAX_MOVES} times during one request")

    async def _follow(self, *, sent: bool, resend: bool, writes: bool, cause: HttpError | None) -> bool:
        """After a failure (or while the old server is known gone): switch to the home's next server and say so
        (True). False when this memory does not follow the home, or its server still runs (the failure stands).
        With no server left, ServerGoneError when nothing is in doubt, else the failure stands (marked gone)."""
        if self._settings is None:
            return False
        found = await asyncio.to_thread(self.find, self._settings)
        if found is not None and (found.url, found.pid) != (self.server.url, self.server.pid):
            old, self.server, self.client, self._gone = self.client, found, self._client_for(found), False
            await old.aclose()
            return True
        if found is not None:
            self._gone = False
            return False
        self._gone = True
        if not sent or resend:
            raise ServerGoneError(f"{where(self.server)} has stopped and no other server of the home runs") from cause
        return False

    def _lost(self, exc: HttpError, writes: bool) -> BackendUnavailableError:
        if exc.sent and writes:
            doubt = "" if "may or may not" in str(exc) else "; the write may or may not have been carried out"
            return OutcomeUnknownError(f"{where(self.server)} did not answer: {exc}{doubt}")
        if isinstance(exc, TimeoutError):
            return BackendUnavailableError(f"{where(self.server)} did not answer in time")
        return BackendUnavailableError(f"{where(self.server)} is unreachable: {exc}")

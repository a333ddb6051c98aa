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
import collections
import json
from collections.abc import Callable

from kgents.config import Settings, redact_url
from kgents.errors import BackendUnavailableError, OutcomeUnknownError
from kgents.home.discovery import ServerInfo, find_server
from kgents.memory.http_client import HttpClient, HttpError, HttpResponse
from kgents.memory.wire import error_body

RESEND_DELAYS_S = (0.1, 0.3, 0.6, 1.0)
"""Waits before sending an idempotent write again after the server answered `outcome_unknown` (about 2 s in all:
a database restart's usual length)."""
OUTCOME_UNKNOWN = "outcome_unknown"
NOT_INDEXED = "not_indexed"
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
        self.stats: collections.Counter[str] = collections.Counter()
        """What this endpoint went through: resends of writes in doubt, moves to a new server."""

    def _client_for(self, server: ServerInfo) -> HttpClient:
        return HttpClient(server.url, {"Authorization": f"Bearer {server.token}"}, timeout_s=self.timeout_s)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def request(
        self, method: str, path: str, payload: bytes | None, *, resend: bool, writes: bool
    ) -> HttpResponse:
        """One request's answer (any status). `resend`: sending it twice does it once (a read, or an idempotent
        write); `writes`: a lost answer leaves a change in doubt. Once a write is in doubt, a later answer that
        only says "not done this time" leaves it in doubt: the doubtful answer is what the caller gets."""
        delays = iter(RESEND_DELAYS_S if resend and writes else ())
        doubtful: HttpResponse | None = None
        for _ in range(MAX_MOVES + 1):
            if self._gone:
                await self._follow(sent=False, resend=resend, writes=writes, cause=None)
            try:
                response = await self.client.request(method, path, payload, idempotent=resend)
            except HttpError as exc:
                moved = await self._follow(sent=exc.sent, resend=resend, writes=writes, cause=exc)
                if writes and exc.sent:
                    doubtful = doubtful or in_doubt(f"{where(self.server)} did not answer: {exc}")
                if moved and (resend or not exc.sent):
                    continue
                raise self._lost(exc, writes, doubtful is not None) from None
            if writes and (response.resent or is_doubt(response)):
                doubtful = response if is_doubt(response) else doubtful or in_doubt("a request sent again")
            if writes and doubtful is not None and says_not_done(response):
                response = doubtful  # "not done" now says nothing of the earlier sending
            delay = next(delays, None) if is_doubt(response) else None
            if delay is None:
                return response
            self.stats["resent after outcome_unknown"] += 1
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
            self.stats["followed to the home's next server"] += 1
            return True
        if found is not None:
            self._gone = False
            return False
        self._gone = True
        if not sent or resend:
            raise ServerGoneError(f"{where(self.server)} has stopped and no other server of the home runs") from cause
        return False

    def _lost(self, exc: HttpError, writes: bool, doubtful: bool) -> BackendUnavailableError:
        if writes and (exc.sent or doubtful):
            doubt = "" if "may or may not" in str(exc) else "; the write may or may not have been carried out"
            return OutcomeUnknownError(f"{where(self.server)} did not answer: {exc}{doubt}")
        if isinstance(exc, TimeoutError):
            return BackendUnavailableError(f"{where(self.server)} did not answer in time")
        return BackendUnavailableError(f"{where(self.server)} is unreachable: {exc}")


def is_doubt(response: HttpResponse) -> bool:
    return response.status == 503 and OUTCOME_UNKNOWN.encode() in response.body


def says_not_done(response: HttpResponse) -> bool:
    """An answer that tells only that this sending was not carried out (the server or its database was away)."""
    if response.status < 500 or is_doubt(response):
        return False
    return NOT_INDEXED.encode() not in response.body  # `not_indexed` says it was done and kept


def in_doubt(why: str) -> HttpResponse:
    """The answer standing for a write whose outcome is unknown."""
    body = error_body(OUTCOME_UNKNOWN, f"{why}; the write may or may not have been carried out")
    return HttpResponse(503, json.dumps(body).encode())

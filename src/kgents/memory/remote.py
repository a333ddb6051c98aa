"""`RemoteMemory`: `MemoryAPI` over HTTP, through a running `kgents serve` (KGENTS_SERVER_URL, or the server of
this KGENTS_HOME found through its server file).

One keep-alive connection pool per memory; the bearer token comes from KGENTS_SERVER_TOKEN or the home's token
file. Errors come back as the same `kgents.errors` classes the in-process memory raises (`kgents.memory.wire`),
and an unreachable server is a `BackendUnavailableError` naming where the server was found; a write whose answer
was lost is an `OutcomeUnknownError` (`kgents.memory.endpoint`). `remember` chooses its entry ids here, so a
write sent again never plants a second entry.
"""

from __future__ import annotations

import builtins
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote

from kgents.clock import check_asked_at
from kgents.config import DEFAULT_PERSONA, Settings, check_persona
from kgents.errors import ConfigError, OutcomeUnknownError
from kgents.garden.filters import EntryFilter
from kgents.garden.model import EntryType, GardenEntry
from kgents.garden.records import AuditRecord
from kgents.home.discovery import ServerInfo, find_server, is_persona_token
from kgents.memory import wire
from kgents.memory.api import DEFAULT_TYPE, EntryRef, MemoryItem, RecallHit, SoulView
from kgents.memory.endpoint import Endpoint
from kgents.memory.http_client import IDEMPOTENT_METHODS

DEFAULT_TIMEOUT_S = 120.0
"""A request's deadline: long enough for a large batch to be planted and indexed."""


class RemoteMemory:
    """One persona's memory behind a server: `async with RemoteMemory(server, "kent") as m: ...`."""

    def __init__(
        self,
        server: ServerInfo,
        persona: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        settings: Settings | None = None,
    ) -> None:
        """`settings`: the home to follow when `server` is the home's own (found through its server file) and
        stops: requests then go to the server that took over (see `kgents.memory.endpoint`)."""
        self._persona = check_persona(persona)
        self._base = f"/v1/personas/{quote(self._persona, safe='')}"
        self._endpoint = Endpoint(server, timeout_s=timeout_s, settings=settings)

    @classmethod
    def for_settings(cls, settings: Settings, persona: str | None = None) -> RemoteMemory:
        """Through KGENTS_SERVER_URL or this home's live server (followed to the next one when it stops);
        ConfigError when there is none."""
        server = find_server(settings)
        if server is None:
            raise ConfigError(f"no kgents server is running for KGENTS_HOME {settings.home}; start `kgents serve`")
        return cls(server, persona or settings.persona, settings=settings)

    @property
    def server(self) -> ServerInfo:
        """The server this memory goes through now."""
        return self._endpoint.server

    @property
    def persona(self) -> str:
        return self._persona

    async def __aenter__(self) -> RemoteMemory:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._endpoint.aclose()

    # -- the wire ------------------------------------------------------------------------------------------------
    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        absolute: bool = False,
        idempotent: bool | None = None,
        writes: bool | None = None,
    ) -> Any:
        """One request under this persona (`absolute`: a server-wide path under /v1, e.g. /health); the parsed JSON
        answer (None for 204), or the error it stands for. `idempotent`: sending it twice does it once, so it may
        be resent (default: by its method); `writes`: it changes something, so a lost answer leaves it in doubt
        (`OutcomeUnknownError`; default: any method but GET)."""
        url = ("/v1" + path) if absolute else self._base + path
        payload = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        resend = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        response = await self._endpoint.request(
            method, url, payload, resend=resend, writes=method != "GET" if writes is None else writes
        )
        if response.status == 204:
            return None
        try:
            data = json.loads(response.body)
        except ValueError:
            data = None
        if response.status >= 400:
            raise wire.error_from_body(response.status, data)
        return data

    def _ref(self, entry: EntryRef) -> str:
        return f"/memories/{quote(str(entry), safe='')}"

    # -- MemoryAPI ---------------------------------------------------------------------------------------------
    async def remember(
        self,
        content: str,
        *,
        type: EntryType | str = DEFAULT_TYPE,
        tags: Sequence[str] = (),
        confidence: float = 0.5,
        observed_at: datetime | None = None,
        evidence: Sequence[str] = (),
        affinities: Mapping[str, float] | None = None,
        entry_id: uuid.UUID | None = None,
    ) -> GardenEntry:
        # the id is chosen here, so sending it again (a lost answer) finds the entry instead of planting a second
        item = MemoryItem(content, type, tags, confidence, observed_at, evidence, affinities, entry_id or uuid.uuid4())
        body = wire.item_to_dict(item)
        return wire.entry_from_dict(await self._idempotent_write("POST", "/memories", body, [item.entry_id]))

    async def remember_many(self, items: Sequence[MemoryItem]) -> builtins.list[GardenEntry]:
        chosen = [i if i.entry_id is not None else replace(i, entry_id=uuid.uuid4()) for i in items]
        body = {"items": [wire.item_to_dict(i) for i in chosen]}
        data = await self._idempotent_write("POST", "/memories/batch", body, [i.entry_id for i in chosen])
        return [wire.entry_from_dict(e) for e in data["entries"]]

    async def _idempotent_write(self, method: str, path: str, body: Any, ids: Sequence[uuid.UUID | None]) -> Any:
        try:
            return await self.call(method, path, body, idempotent=True)
        except OutcomeUnknownError as exc:
            shown = ", ".join(str(i) for i in ids[:3]) + (", …" if len(ids) > 3 else "")
            raise OutcomeUnknownError(f"{exc}; remember it again with the same entry id ({shown}) to know") from None

    async def recall(
        self,
        query: str,
        *,
        limit: int = 10,
        filters: EntryFilter | None = None,
        min_score: float | None = None,
        explain: bool = False,
        mode: str = "hybrid",
        asked_at: datetime | None = None,
    ) -> builtins.list[RecallHit]:
        body = {"query": query, "limit": limit, "filters": wire.filter_to_dict(filters), "min_score": min_score}
        if explain:
            body["explain"] = True
        if mode != "hybrid":
            body["mode"] = mode
        if asked_at is not None:
            body["asked_at"] = asked_at.isoformat() if check_asked_at(asked_at) else None
        data = await self.call("POST", "/recall", body, idempotent=True, writes=False)
        return [wire.hit_from_dict(h) for h in data["hits"]]

    async def get(self, entry: EntryRef) -> GardenEntry:
        return wire.entry_from_dict(await self.call("GET", self._ref(entry)))

    async def list(
        self, filters: EntryFilter | None = None, *, order_by: str = "confidence", limit: int = 100, offset: int = 0
    ) -> builtins.list[GardenEntry]:
        body = {"filters": wire.filter_to_dict(filters), "order_by": order_by, "limit": limit, "offset": offset}
        data = await self.call("POST", "/list", body, idempotent=True, writes=False)
        return [wire.entry_from_dict(e) for e in data["entries"]]

    async def update(self, entry: EntryRef, **fields: Any) -> GardenEntry:
        body = {k: wire.jsonable(v) for k, v in fields.items()}
        return wire.entry_from_dict(await self.call("PATCH", self._ref(entry), body))

    async def nurture(
        self, entry: EntryRef, *, evidence: str | None = None, delta: float = 0.05, confidence: float | None = None
    ) -> GardenEntry:
        body = {"evidence": evidence, "delta": delta, "confidence": confidence}
        return wire.entry_from_dict(await self.call("POST", self._ref(entry) + "/nurture", body))

    async def reassess(self, entry: EntryRef, *, confidence: float, evidence: str | None = None) -> GardenEntry:
        body = {"confidence": confidence, "evidence": evidence}
        return wire.entry_from_dict(await self.call("POST", self._ref(entry) + "/reassess", body))

    async def compost(
        self, entry: EntryRef, *, successor: EntryRef | None = None, evidence: str | None = None
    ) -> GardenEntry:
        body = {"successor": None if successor is None else str(successor), "evidence": evidence}
        return wire.entry_from_dict(await self.call("POST", self._ref(entry) + "/compost", body))

    async def forget(self, entry: EntryRef) -> None:
        await self.call("DELETE", self._ref(entry))

    async def history(self, entry: EntryRef) -> builtins.list[AuditRecord]:
        data = await self.call("GET", self._ref(entry) + "/history")
        return [wire.audit_from_dict(r) for r in data["records"]]

    async def soul(self) -> SoulView:
        return wire.soul_from_dict(await self.call("GET", "/soul"))

    async def set_mode(self, mode: str) -> SoulView:
        return wire.soul_from_dict(await self.call("PUT", "/soul/mode", {"mode": mode}))

    async def nudge(self, shifts: Mapping[str, float]) -> SoulView:
        return wire.soul_from_dict(await self.call("POST", "/soul/nudge", {"shifts": dict(shifts)}))

    async def record_interaction(self, tokens: int = 0) -> SoulView:
        return wire.soul_from_dict(await self.call("POST", "/soul/interactions", {"tokens": tokens}))

    async def status(self) -> dict[str, Any]:
        data: dict[str, Any] = await self.call("GET", "/status")
        return data

    async def build_index(self, *, now: bool = True, wait_s: float | None = None) -> dict[str, Any] | None:
        """The server waits up to `wire.BUILD_WAIT_S` a request, so a long build is awaited in several short
        requests (none held open for minutes)."""
        deadline = None if wait_s is None else time.monotonic() + wait_s
        while True:
            left = wire.BUILD_WAIT_S if deadline is None else max(0.0, deadline - time.monotonic())
            body = {"now": now, "wait": min(wire.BUILD_WAIT_S, left)}
            graph: dict[str, Any] | None = (await self.call("POST", "/index/build", body, idempotent=True))["graph"]
            if graph is None or graph["state"] != "building" or left <= 0:
                return graph
            now = False

    # -- operator-wide (the index's owner answers; the operator token only) ---------------------------------------
    async def _admin(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        data: dict[str, Any] = await self.call(method, "/admin" + path, body, absolute=True)
        return data

    async def synapse_coherency(self, *, full: bool = False) -> dict[str, Any]:
        """Coherency measured now by the index's owner (every persona's counts; sample ids only of ours): by
        bucket, or every (id, version) of both sides with `full`."""
        whole = "&full=1" if full else ""
        return await self._admin("GET", f"/synapse/coherency?persona={quote(self._persona, safe='')}{whole}")

    async def synapse_index(self) -> dict[str, Any]:
        """The index as the server sees it: location, active collection, embedder, points."""
        return await self._admin("GET", "/synapse/index")

    async def synapse_reconcile(self) -> dict[str, Any]:
        return await self._admin("POST", "/synapse/reconcile")

    async def synapse_reindex(self, embedder: str | None = None) -> dict[str, Any]:
        """Reindex done by the index's owner (a `ReindexReport` as a dict)."""
        return await self._admin("POST", "/synapse/reindex", {"embedder": embedder})

    async def forget_persona(self, *, purge_history: bool = False) -> dict[str, Any]:
        """This persona removed everywhere it lives, by the server (a `ForgetReport` as a dict)."""
        query = "?purge_history=true" if purge_history else ""
        return await self._admin("DELETE", f"/personas/{quote(self._persona, safe='')}{query}")

    async def whoami(self) -> dict[str, Any]:
        """What this memory's token opens: `{"scope": "operator"}` or `{"scope": "persona", "persona": …,
        "read_only": …}`."""
        data: dict[str, Any] = await self.call("GET", "/whoami", absolute=True, idempotent=True)
        return data


async def persona_of_server(server: ServerInfo, asked: str | None, configured: str) -> str:
    """The persona a memory through `server` is for. A persona token (`kgents token create`) is bound to its own
    persona: the memory is that persona's, and naming another one (`asked`, or KGENTS_PERSONA other than the
    default) is a ConfigError saying whose token it is. With the operator token, `asked` or else `configured`."""
    if not is_persona_token(server.token):
        return asked or configured
    async with RemoteMemory(server, asked or configured) as probe:
        grant = await probe.whoami()
    bound = grant.get("persona")
    if grant.get("scope") != "persona" or not isinstance(bound, str):
        return asked or configured
    wanted = asked or (configured if configured != DEFAULT_PERSONA else None)
    if wanted is not None and wanted != bound:
        raise ConfigError(
            f"KGENTS_SERVER_TOKEN is a token of persona {bound}; it cannot open persona {wanted}"
            " (leave the persona out, or use a token of that persona)"
        )
    return bound

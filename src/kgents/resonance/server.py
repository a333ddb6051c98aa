"""The server vector index: a Qdrant server through `qdrant-client` (`KGENTS_QDRANT_URL`, optional API key).

This is how the index scales past one machine: Qdrant's own replication and sharding, HNSW built by the server
in the background. Tests run the very same code against qdrant-client's in-process local mode
(`location=":memory:"`).

Version guard: every write carries an update filter `version <= new` per point, so the server itself refuses
to overwrite a newer point, atomically, whatever other relays do. Writes are also read first, to skip
obviously stale points and to count what was written; with several writers at once that count (and
`set_payload`'s True) is best-effort, while the guard itself stays exact. Needs Qdrant >= 1.16 (update
filters, collection metadata).

The search filter and the version guard are built in `server_query.py`; the lexical signal in
`server_lexical.py`.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
import warnings
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar


def _import_httpx_without_its_cli() -> None:
    """httpx imports its command-line client, and with it `rich`, whenever rich is installed; the core must
    not load UI libraries, so hide rich while httpx is first imported (httpx then installs a stub `main`)."""
    if "httpx" in sys.modules or "rich" in sys.modules:
        return
    sys.modules["rich"] = None  # type: ignore[assignment]
    try:
        import httpx  # noqa: F401
    finally:
        del sys.modules["rich"]


_import_httpx_without_its_cli()

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
from qdrant_client import AsyncQdrantClient  # noqa: E402
from qdrant_client import models as qm  # noqa: E402
from qdrant_client.http.exceptions import ApiException, UnexpectedResponse  # noqa: E402

from kgents.config import redact_url  # noqa: E402
from kgents.errors import BackendUnavailableError, NotFoundError, ValidationError  # noqa: E402
from kgents.garden.filters import EntryFilter  # noqa: E402
from kgents.resonance.index_common import (  # noqa: E402
    META_DIMENSION,
    META_EMBEDDER,
    META_LEXICAL,
    PAYLOAD_INDEXES,
    check_collection_name,
    check_limit,
    check_metadata,
    check_vector,
    lexical_flagged,
    metadata_for,
    needs_stamp,
    parse_id,
    plan_writes,
    stored_index_id,
    stored_lexical,
    versions_of,
)
from kgents.resonance.lexical import ANALYZER, LEXICAL_VECTOR, SparseTerms  # noqa: E402
from kgents.resonance.protocols import (  # noqa: E402
    CollectionInfo,
    IndexHit,
    IndexPoint,
    PointPayload,
    RankedHit,
)
from kgents.resonance.server_lexical import LEXICAL_PARAMS, NO_LEXICAL, point, ranked, signal_requests  # noqa: E402
from kgents.resonance.server_query import not_newer, persona_filter, search_filter  # noqa: E402

T = TypeVar("T")

_SCHEMA = {
    "keyword": qm.PayloadSchemaType.KEYWORD,
    "float": qm.PayloadSchemaType.FLOAT,
    "integer": qm.PayloadSchemaType.INTEGER,
}
SCROLL_PAGE = 1024
DEFAULT_TIMEOUT_S = 10


class QdrantServerIndex:
    """`VectorIndex` on qdrant-client. Use `connect(url, api_key)` for a server, `in_memory()` for tests."""

    def __init__(self, client: AsyncQdrantClient, where: str, secret: str | None = None) -> None:
        self._client = client
        self._where = where
        self._secret = secret
        self._dimensions: dict[str, int] = {}
        self._lexical: dict[str, bool] = {}
        self._write_locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def connect(cls, url: str, api_key: str | None = None, timeout: int = DEFAULT_TIMEOUT_S) -> QdrantServerIndex:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Api key is used with an insecure connection")
            # No version probe in the constructor: it is a blocking request, made before any event loop runs.
            client = AsyncQdrantClient(url=url, api_key=api_key, timeout=timeout, check_compatibility=False)
        return cls(client, f"KGENTS_QDRANT_URL={redact_url(url)}", secret=api_key)

    @classmethod
    def in_memory(cls) -> QdrantServerIndex:
        return cls(AsyncQdrantClient(location=":memory:"), "in-process Qdrant (:memory:)")

    @property
    def backend(self) -> str:
        return "qdrant"

    @property
    def location(self) -> str:
        return f"Qdrant at {self._where}"

    # -- plumbing -------------------------------------------------------------------------------------------

    def _unavailable(self, exc: BaseException) -> BackendUnavailableError:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if self._secret:
            reason = reason.replace(self._secret, "***")
        return BackendUnavailableError(f"Qdrant at {self._where} is unavailable: {reason[:200]}")

    async def _call(self, awaitable: Awaitable[T], collection: str | None = None) -> T:
        """Await a client call, turning transport and server failures into one-line kgents errors."""
        try:
            return await awaitable
        except UnexpectedResponse as exc:
            if exc.status_code == 404 and collection is not None:
                raise NotFoundError(f"vector collection {collection!r} does not exist") from None
            raise self._unavailable(exc) from None
        except ValueError as exc:  # local mode: "Collection x not found"
            if collection is not None and "not found" in str(exc):
                raise NotFoundError(f"vector collection {collection!r} does not exist") from None
            raise
        except (TimeoutError, ApiException, OSError) as exc:
            raise self._unavailable(exc) from None
        except Exception as exc:  # grpc/httpx transport errors have no common base we can import cheaply
            if type(exc).__module__.split(".")[0] in {"httpx", "httpcore", "grpc"}:
                raise self._unavailable(exc) from None
            raise

    async def _dimension(self, collection: str) -> int:
        check_collection_name(collection)
        known = self._dimensions.get(collection)
        if known is None:
            info = await self._call(self._client.get_collection(collection), collection)
            known = int((info.config.metadata or {}).get(META_DIMENSION, 0))
            if not known:
                vectors = info.config.params.vectors
                known = int(vectors.size) if isinstance(vectors, qm.VectorParams) else 0
            self._dimensions[collection] = known
            self._lexical[collection] = stored_lexical(info.config.metadata)
        return known

    async def has_lexical(self, collection: str) -> bool:
        await self._dimension(collection)
        return self._lexical.get(collection, False)

    def _write_lock(self, collection: str) -> asyncio.Lock:
        return self._write_locks.setdefault(collection, asyncio.Lock())

    # -- VectorIndex ----------------------------------------------------------------------------------------

    async def ensure_collection(self, name: str, embedder: str, dimension: int, index_id: str | None = None) -> None:
        check_collection_name(name)
        if dimension < 1:
            raise ValidationError(f"vector dimension must be positive (got {dimension})")
        if not await self._call(self._client.collection_exists(name)):
            try:
                await self._call(
                    self._client.create_collection(
                        name,
                        vectors_config=qm.VectorParams(size=dimension, distance=qm.Distance.COSINE),
                        sparse_vectors_config={LEXICAL_VECTOR: LEXICAL_PARAMS},
                        metadata={**metadata_for(embedder, dimension, index_id), META_LEXICAL: ANALYZER},
                    )
                )
            except BackendUnavailableError:
                if not await self._call(self._client.collection_exists(name)):
                    raise  # otherwise another process created it first: check it below
        info = await self._call(self._client.get_collection(name), name)
        check_metadata(name, info.config.metadata, embedder, dimension)
        if needs_stamp(name, info.config.metadata or {}, index_id):
            meta = {**(info.config.metadata or {}), **metadata_for(embedder, dimension, index_id)}
            await self._call(self._client.update_collection(name, metadata=meta), name)
        self._dimensions[name] = dimension
        self._lexical[name] = stored_lexical(info.config.metadata)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Payload indexes have no effect in the local Qdrant")
            for field, kind in PAYLOAD_INDEXES.items():
                if field not in (info.payload_schema or {}):
                    await self._call(self._client.create_payload_index(name, field, _SCHEMA[kind], wait=True))

    async def index_id(self, name: str) -> str | None:
        check_collection_name(name)
        info = await self._call(self._client.get_collection(name), name)
        return stored_index_id(info.config.metadata)

    async def collections(self) -> list[CollectionInfo]:
        listed = await self._call(self._client.get_collections())
        out = []
        for described in sorted(listed.collections, key=lambda c: c.name):
            info = await self._call(self._client.get_collection(described.name), described.name)
            meta = info.config.metadata or {}
            out.append(
                CollectionInfo(
                    name=described.name,
                    embedder=str(meta.get(META_EMBEDDER, "")),
                    dimension=int(meta.get(META_DIMENSION, 0)),
                    points=int(info.points_count or 0),
                    extra={
                        "indexed_vectors": int(info.indexed_vectors_count or 0),
                        "status": str(info.status),
                    },
                )
            )
        return out

    async def drop_collection(self, name: str) -> None:
        check_collection_name(name)
        await self._call(self._client.delete_collection(name))
        self._dimensions.pop(name, None)
        self._lexical.pop(name, None)

    async def upsert(self, collection: str, points: Sequence[IndexPoint]) -> int:
        dimension = await self._dimension(collection)
        if not points:
            return 0
        vectors = {p.id: check_vector(p.vector, dimension) for p in points}
        lexical = self._lexical.get(collection, False)
        async with self._write_lock(collection):
            stored = await self._stored_versions(collection, list(vectors))
            todo = plan_writes(points, stored)
            if not todo:
                return 0
            batch = [point(p, vectors[p.id], lexical) for p in todo]
            guard = qm.Filter(should=[not_newer(p.id, p.payload.version) for p in todo])
            await self._call(self._client.upsert(collection, batch, wait=True, update_filter=guard), collection)
            return len(todo)

    async def set_payload(self, collection: str, entry_id: uuid.UUID, payload: PointPayload) -> bool:
        await self._dimension(collection)
        async with self._write_lock(collection):
            stored = await self._stored_versions(collection, [entry_id])
            if entry_id not in stored or stored[entry_id] > payload.version:
                return False
            selector = qm.FilterSelector(filter=not_newer(entry_id, payload.version))
            await self._call(
                self._client.overwrite_payload(collection, payload.to_dict(), selector, wait=True), collection
            )
            return True

    async def delete(self, collection: str, ids: Sequence[uuid.UUID]) -> None:
        check_collection_name(collection)
        if not ids:
            await self._dimension(collection)
            return
        selector = qm.PointIdsList(points=[str(i) for i in ids])
        await self._call(self._client.delete(collection, selector, wait=True), collection)

    async def delete_persona(self, collection: str, persona: str) -> int:
        await self._dimension(collection)
        mine = persona_filter(persona)
        counted = await self._call(self._client.count(collection, count_filter=mine, exact=True), collection)
        if counted.count:
            selector = qm.FilterSelector(filter=mine)
            await self._call(self._client.delete(collection, selector, wait=True), collection)
        return int(counted.count)

    async def retrieve(self, collection: str, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, PointPayload]:
        await self._dimension(collection)
        if not ids:
            return {}
        lexical = self._lexical.get(collection, False)
        with_vectors = [LEXICAL_VECTOR] if lexical else False
        records = await self._call(
            self._client.retrieve(collection, [str(i) for i in ids], with_payload=True, with_vectors=with_vectors),
            collection,
        )
        return {
            parse_id(r.id): lexical_flagged(
                PointPayload.from_dict(r.payload or {}),
                not lexical or LEXICAL_VECTOR in (r.vector if isinstance(r.vector, dict) else {}),
            )
            for r in records
        }

    async def search(
        self,
        collection: str,
        vector: Sequence[float] | npt.NDArray[np.float32],
        persona: str,
        flt: EntryFilter,
        limit: int = 10,
        score_threshold: float | None = None,
    ) -> list[IndexHit]:
        dimension = await self._dimension(collection)
        check_limit(limit)
        response = await self._call(
            self._client.query_points(
                collection,
                query=check_vector(vector, dimension),
                query_filter=search_filter(persona, flt),
                limit=limit,
                score_threshold=score_threshold,
                with_payload=True,
            ),
            collection,
        )
        return [
            IndexHit(parse_id(h.id), float(h.score), PointPayload.from_dict(h.payload or {})) for h in response.points
        ]

    async def search_signals(
        self,
        collection: str,
        vector: Sequence[float] | npt.NDArray[np.float32] | None,
        terms: SparseTerms | None,
        persona: str,
        flt: EntryFilter,
        limit: int = 10,
    ) -> tuple[list[RankedHit], list[RankedHit]]:
        dimension = await self._dimension(collection)
        check_limit(limit)
        wanted = self._lexical.get(collection, False) and terms is not None and bool(terms)
        requests = signal_requests(
            None if vector is None else check_vector(vector, dimension),
            terms if wanted else None,
            search_filter(persona, flt),
            limit,
        )
        if not requests:
            return [], []
        answers = await self._call(self._client.query_batch_points(collection, requests), collection)
        return ranked([a.points for a in answers], vector is not None, terms if wanted else None)

    async def drop_lexical(self, collection: str, ids: Sequence[uuid.UUID]) -> None:
        await self._dimension(collection)
        if self._lexical.get(collection, False) and ids:
            selector = qm.PointIdsList(points=[str(i) for i in ids])
            await self._call(self._client.delete_vectors(collection, [LEXICAL_VECTOR], selector, wait=True), collection)

    async def versions(self, collection: str) -> dict[uuid.UUID, tuple[str, int]]:
        await self._dimension(collection)
        out: dict[uuid.UUID, tuple[str, int]] = {}
        offset: Any = None
        while True:
            records, offset = await self._call(
                self._client.scroll(collection, limit=SCROLL_PAGE, offset=offset, with_payload=["persona", "version"]),
                collection,
            )
            for r in records:
                payload = r.payload or {}
                out[parse_id(r.id)] = (str(payload.get("persona", "")), int(payload.get("version", -1)))
            if offset is None:
                break
        if self._lexical.get(collection, False):  # a point without its lexical vector is stale
            for entry_id, persona in await self._scroll_personas(collection, NO_LEXICAL):
                out[entry_id] = (persona, -1)
        return out

    async def _scroll_personas(self, collection: str, flt: qm.Filter) -> list[tuple[uuid.UUID, str]]:
        found: list[tuple[uuid.UUID, str]] = []
        offset: Any = None
        while True:
            records, offset = await self._call(
                self._client.scroll(
                    collection, scroll_filter=flt, limit=SCROLL_PAGE, offset=offset, with_payload=["persona"]
                ),
                collection,
            )
            found.extend((parse_id(r.id), str((r.payload or {}).get("persona", ""))) for r in records)
            if offset is None:
                return found

    async def count(self, collection: str) -> int:
        check_collection_name(collection)
        result = await self._call(self._client.count(collection, exact=True), collection)
        return int(result.count)

    async def close(self) -> None:
        await self._client.close()

    async def _stored_versions(self, collection: str, ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
        records = await self._call(
            self._client.retrieve(collection, [str(i) for i in ids], with_payload=["version"]), collection
        )
        return versions_of(records)

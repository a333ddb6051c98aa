"""One suite over both vector index adapters: the embedded `EdgeIndex` (qdrant-edge in a temp dir) and
`QdrantServerIndex` through qdrant-client's in-process mode, which speaks the same client API as a server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from kgents.errors import IndexMismatchError, NotFoundError, ValidationError
from kgents.garden.filters import EntryFilter
from kgents.resonance.edge import EdgeIndex
from kgents.resonance.embedders import open_embedder
from kgents.resonance.hashing import content_hash
from kgents.resonance.protocols import IndexPoint, PointPayload, VectorIndex
from kgents.resonance.server import QdrantServerIndex

DIM = 8
COLLECTION = "garden_test"
ADAPTERS = ["edge", "qdrant"]


@pytest.fixture(params=ADAPTERS)
async def index(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorIndex]:
    opened: VectorIndex = (
        EdgeIndex.open(tmp_path / "index") if request.param == "edge" else QdrantServerIndex.in_memory()
    )
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def ready(index: VectorIndex) -> VectorIndex:
    await index.ensure_collection(COLLECTION, "test-embedder", DIM)
    return index


def unit(i: int, dim: int = DIM) -> np.ndarray:
    v = np.zeros(dim, dtype=np.float32)
    v[i % dim] = 1.0
    return v


def payload(
    version: int = 1,
    persona: str = "kent",
    entry_type: str = "PREFERENCE",
    lifecycle: str = "SEED",
    confidence: float = 0.5,
    tags: tuple[str, ...] = (),
    text: str = "text",
    embedder: str = "test-embedder",
) -> PointPayload:
    return PointPayload(persona, entry_type, lifecycle, confidence, tags, version, content_hash(text), embedder)


def point(vector: np.ndarray, **kwargs: object) -> IndexPoint:
    return IndexPoint(uuid.uuid4(), vector, payload(**kwargs))  # type: ignore[arg-type]


async def test_backend_name_and_protocol(index: VectorIndex) -> None:
    assert isinstance(index, VectorIndex)
    assert index.backend in {"edge", "qdrant"}


async def test_create_is_idempotent_and_listed(ready: VectorIndex) -> None:
    await ready.ensure_collection(COLLECTION, "test-embedder", DIM)
    infos = {c.name: c for c in await ready.collections()}
    assert infos[COLLECTION].embedder == "test-embedder"
    assert infos[COLLECTION].dimension == DIM
    assert infos[COLLECTION].points == 0


async def test_mismatch_of_embedder_or_dimension_is_a_clear_error(ready: VectorIndex) -> None:
    with pytest.raises(IndexMismatchError, match=r"test-embedder.*reindex"):
        await ready.ensure_collection(COLLECTION, "other-embedder", DIM)
    with pytest.raises(IndexMismatchError, match=f"{DIM}-d"):
        await ready.ensure_collection(COLLECTION, "test-embedder", DIM * 2)


async def test_drop_collection(ready: VectorIndex) -> None:
    await ready.upsert(COLLECTION, [point(unit(0))])
    await ready.drop_collection(COLLECTION)
    assert COLLECTION not in {c.name for c in await ready.collections()}
    with pytest.raises(NotFoundError):
        await ready.count(COLLECTION)
    await ready.ensure_collection(COLLECTION, "another", 4)  # a fresh one, any embedder
    assert await ready.count(COLLECTION) == 0


async def test_unknown_collection_and_bad_input(index: VectorIndex) -> None:
    with pytest.raises(NotFoundError, match="nope"):
        await index.upsert("nope", [point(unit(0))])
    with pytest.raises(NotFoundError):
        await index.search("nope", unit(0), "kent", EntryFilter())
    with pytest.raises(ValidationError, match="collection name"):
        await index.ensure_collection("../escape", "e", DIM)
    await index.ensure_collection(COLLECTION, "test-embedder", DIM)
    with pytest.raises(ValidationError, match="shape"):
        await index.upsert(COLLECTION, [point(np.ones(DIM + 1, dtype=np.float32))])
    with pytest.raises(ValidationError, match="NaN"):
        await index.search(COLLECTION, np.full(DIM, np.nan, dtype=np.float32), "kent", EntryFilter())


async def test_upsert_retrieve_round_trip(ready: VectorIndex) -> None:
    p = point(unit(1), tags=("style", "code"), confidence=0.75, lifecycle="TREE", text="hello")
    assert await ready.upsert(COLLECTION, [p]) == 1
    got = await ready.retrieve(COLLECTION, [p.id, uuid.uuid4()])
    assert got == {p.id: p.payload}
    assert await ready.upsert(COLLECTION, [p]) == 1  # a replay of the same version is harmless
    assert await ready.count(COLLECTION) == 1
    hits = await ready.search(COLLECTION, unit(1), "kent", EntryFilter())
    assert [h.id for h in hits] == [p.id]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[0].payload == p.payload


async def test_version_guard_skips_stale_and_writes_newer(ready: VectorIndex) -> None:
    entry = uuid.uuid4()
    assert await ready.upsert(COLLECTION, [IndexPoint(entry, unit(0), payload(version=5))]) == 1
    assert await ready.upsert(COLLECTION, [IndexPoint(entry, unit(1), payload(version=4))]) == 0
    assert (await ready.retrieve(COLLECTION, [entry]))[entry].version == 5
    hits = await ready.search(COLLECTION, unit(0), "kent", EntryFilter(), limit=1)
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)  # the vector of version 5 survived

    assert await ready.upsert(COLLECTION, [IndexPoint(entry, unit(2), payload(version=6))]) == 1
    assert (await ready.retrieve(COLLECTION, [entry]))[entry].version == 6
    hits = await ready.search(COLLECTION, unit(2), "kent", EntryFilter(), limit=1)
    assert hits[0].id == entry and hits[0].score == pytest.approx(1.0, abs=1e-5)


async def test_version_guard_in_a_mixed_batch(ready: VectorIndex) -> None:
    old, new = uuid.uuid4(), uuid.uuid4()
    await ready.upsert(COLLECTION, [IndexPoint(old, unit(0), payload(version=9))])
    batch = [
        IndexPoint(old, unit(1), payload(version=3)),  # stale
        IndexPoint(new, unit(2), payload(version=1)),
        IndexPoint(new, unit(3), payload(version=2)),  # same id twice: the newer wins
    ]
    assert await ready.upsert(COLLECTION, batch) == 1
    assert await ready.versions(COLLECTION) == {old: ("kent", 9), new: ("kent", 2)}


async def test_set_payload_keeps_vector_and_respects_versions(ready: VectorIndex) -> None:
    p = point(unit(3), version=2, lifecycle="SEED", confidence=0.4)
    await ready.upsert(COLLECTION, [p])
    newer = payload(version=3, lifecycle="TREE", confidence=0.8)
    assert await ready.set_payload(COLLECTION, p.id, newer) is True
    assert (await ready.retrieve(COLLECTION, [p.id]))[p.id] == newer
    hits = await ready.search(COLLECTION, unit(3), "kent", EntryFilter(lifecycles=("TREE",)))
    assert hits[0].id == p.id and hits[0].score == pytest.approx(1.0, abs=1e-5)

    assert await ready.set_payload(COLLECTION, p.id, payload(version=1, lifecycle="COMPOST")) is False
    assert (await ready.retrieve(COLLECTION, [p.id]))[p.id] == newer
    assert await ready.set_payload(COLLECTION, uuid.uuid4(), newer) is False
    assert await ready.count(COLLECTION) == 1  # set_payload never creates a point


async def test_delete(ready: VectorIndex) -> None:
    a, b = point(unit(0)), point(unit(1))
    await ready.upsert(COLLECTION, [a, b])
    await ready.delete(COLLECTION, [a.id, uuid.uuid4()])
    assert set(await ready.retrieve(COLLECTION, [a.id, b.id])) == {b.id}
    await ready.delete(COLLECTION, [])
    assert await ready.count(COLLECTION) == 1


async def test_delete_persona_takes_only_its_points(ready: VectorIndex) -> None:
    kent = [point(unit(i), persona="kent") for i in range(5)]
    others = [point(unit(i), persona=p) for i, p in enumerate(["eve", "kent-2", "Kent", "eve"])]
    await ready.upsert(COLLECTION, kent + others)
    assert await ready.delete_persona(COLLECTION, "kent") == len(kent)
    assert {owner for owner, _ in (await ready.versions(COLLECTION)).values()} == {"eve", "kent-2", "Kent"}
    assert await ready.count(COLLECTION) == len(others)
    assert await ready.delete_persona(COLLECTION, "kent") == 0, "nothing left: nothing deleted"
    assert await ready.search(COLLECTION, unit(0), "kent", EntryFilter()) == []
    with pytest.raises(NotFoundError):
        await ready.delete_persona("nope", "kent")


async def test_persona_isolation(ready: VectorIndex) -> None:
    mine = point(unit(0), persona="kent")
    theirs = point(unit(0), persona="eve")
    await ready.upsert(COLLECTION, [mine, theirs])
    assert [h.id for h in await ready.search(COLLECTION, unit(0), "kent", EntryFilter())] == [mine.id]
    assert [h.id for h in await ready.search(COLLECTION, unit(0), "eve", EntryFilter())] == [theirs.id]
    assert await ready.search(COLLECTION, unit(0), "nobody", EntryFilter()) == []


async def test_filters(ready: VectorIndex) -> None:
    seed = point(unit(0), lifecycle="SEED", entry_type="PREFERENCE", tags=("code",), confidence=0.3)
    tree = point(unit(0), lifecycle="TREE", entry_type="PATTERN", tags=("code", "style"), confidence=0.7)
    flower = point(unit(0), lifecycle="FLOWER", entry_type="VALUE", tags=("style",), confidence=0.95)
    await ready.upsert(COLLECTION, [seed, tree, flower])

    async def ids(**kwargs: object) -> set[uuid.UUID]:
        hits = await ready.search(COLLECTION, unit(0), "kent", EntryFilter(**kwargs))  # type: ignore[arg-type]
        return {h.id for h in hits}

    assert await ids() == {seed.id, tree.id, flower.id}
    assert await ids(lifecycles=("TREE", "FLOWER")) == {tree.id, flower.id}
    assert await ids(entry_types=("PREFERENCE",)) == {seed.id}
    assert await ids(tags=("code",)) == {seed.id, tree.id}
    assert await ids(tags=("code", "style")) == {tree.id}  # every tag must be present
    assert await ids(min_confidence=0.7) == {tree.id, flower.id}
    assert await ids(min_confidence=0.7, entry_types=("VALUE",), lifecycles=("FLOWER",)) == {flower.id}
    assert await ids(tags=("absent",)) == set()


async def test_limit_ordering_and_score_threshold(ready: VectorIndex) -> None:
    near = point(np.array([1, 0.1, 0, 0, 0, 0, 0, 0], dtype=np.float32))
    mid = point(np.array([1, 1, 0, 0, 0, 0, 0, 0], dtype=np.float32))
    far = point(unit(5))
    await ready.upsert(COLLECTION, [far, mid, near])
    hits = await ready.search(COLLECTION, unit(0), "kent", EntryFilter(), limit=2)
    assert [h.id for h in hits] == [near.id, mid.id]
    assert hits[0].score > hits[1].score
    hits = await ready.search(COLLECTION, unit(0), "kent", EntryFilter(), score_threshold=0.5)
    assert {h.id for h in hits} == {near.id, mid.id}


async def test_versions_and_count_over_many_points(ready: VectorIndex) -> None:
    rng = np.random.default_rng(7)
    points = [
        IndexPoint(uuid.uuid4(), rng.standard_normal(DIM).astype(np.float32), payload(version=i % 5 + 1))
        for i in range(2500)  # more than one scroll page
    ]
    assert await ready.upsert(COLLECTION, points) == len(points)
    assert await ready.count(COLLECTION) == len(points)
    assert await ready.versions(COLLECTION) == {p.id: ("kent", p.payload.version) for p in points}


async def test_paraphrase_search_with_the_default_embedder(index: VectorIndex) -> None:
    embedder = open_embedder()
    await index.ensure_collection("garden_semantic", embedder.name, embedder.dimension)
    texts = [
        "I prefer minimal code",
        "the weather is sunny today",
        "my favourite food is pasta with tomatoes",
        "meetings should have a written agenda",
        "I enjoy hiking in the mountains",
    ]
    vectors = embedder.embed(texts)
    points = [
        IndexPoint(uuid.uuid4(), v, payload(text=t, embedder=embedder.name))
        for t, v in zip(texts, vectors, strict=True)
    ]
    await index.upsert("garden_semantic", points)
    ids = [p.id for p in points]

    async def ranked(query: str) -> list[str]:
        hits = await index.search("garden_semantic", embedder.embed([query])[0], "kent", EntryFilter(), limit=5)
        return [texts[ids.index(h.id)] for h in hits]

    # No word in common with the entry. The static default puts it in the first results (the full MiniLM, the
    # `quality` option, ranks it first); a closer paraphrase comes first with either.
    found = await ranked("keep things small")
    assert "I prefer minimal code" in found[:2], found
    assert found.index("I prefer minimal code") < found.index("the weather is sunny today")
    assert (await ranked("keep code small and simple"))[0] == "I prefer minimal code"


async def test_engine_side_guard_holds_when_the_read_was_stale(
    ready: VectorIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer may land between our read and our write (several relays on one server): the write itself
    must still refuse to replace a newer version. Force that race by making the pre-read see nothing."""
    entry = uuid.uuid4()
    await ready.upsert(COLLECTION, [IndexPoint(entry, unit(0), payload(version=7))])

    async def saw_nothing(*_args: object) -> dict[uuid.UUID, int]:
        return {}

    async def saw_old(*_args: object) -> dict[uuid.UUID, int]:
        return {entry: 1}

    monkeypatch.setattr(ready, "_stored_versions", saw_nothing)
    await ready.upsert(COLLECTION, [IndexPoint(entry, unit(1), payload(version=3, lifecycle="COMPOST"))])
    monkeypatch.setattr(ready, "_stored_versions", saw_old)
    await ready.upsert(COLLECTION, [IndexPoint(entry, unit(2), payload(version=4, lifecycle="COMPOST"))])
    await ready.set_payload(COLLECTION, entry, payload(version=5, lifecycle="COMPOST"))
    monkeypatch.undo()
    assert (await ready.retrieve(COLLECTION, [entry]))[entry].version == 7
    hits = await ready.search(COLLECTION, unit(0), "kent", EntryFilter(), limit=1)
    assert hits[0].id == entry and hits[0].score == pytest.approx(1.0, abs=1e-5)

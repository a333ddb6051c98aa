"""The lexical signal on the embedded index: how points carry it and how both signals are queried.

The dense vector stays the collection's unnamed vector; the lexical one is the named sparse vector
`lexical.LEXICAL_VECTOR`, scored with the engine's IDF modifier (see `lexical.py`).
"""

from __future__ import annotations

import uuid
from collections.abc import Set as AbstractSet
from typing import Any

import qdrant_edge as qe

from kgents.resonance.index_common import parse_id
from kgents.resonance.lexical import LEXICAL_VECTOR, SparseTerms, held
from kgents.resonance.protocols import IndexPoint, RankedHit

LEXICAL_PARAMS = qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)
NO_LEXICAL = qe.Filter(must_not=[qe.HasVectorCondition(LEXICAL_VECTOR)])
"""The points that lack their lexical vector (coherency counts them stale)."""


def point(entry: IndexPoint, vector: list[float], lexical: bool) -> qe.Point:
    """The engine's point: the dense vector, and the lexical one where the collection keeps it (an entry
    without a content word gets an empty one, so it is never taken for a point that lost it)."""
    if not lexical:
        return qe.Point(entry.id, vector, entry.payload.to_dict())
    terms = entry.lexical or SparseTerms((), ())
    sparse = qe.SparseVector(list(terms.indices), list(terms.values))
    return qe.Point(entry.id, {"": vector, LEXICAL_VECTOR: sparse}, entry.payload.to_dict())


def signal_requests(
    vector: list[float] | None, terms: SparseTerms | None, where: qe.Filter, limit: int
) -> list[qe.QueryRequest]:
    """The dense query (if a vector), then the lexical one (if terms), both under the same filter."""
    requests: list[qe.QueryRequest] = []
    if vector is not None:
        requests.append(qe.QueryRequest(limit=limit, query=qe.Query.Nearest(vector), filter=where, with_payload=False))
    if terms:
        sparse = qe.SparseVector(list(terms.indices), list(terms.values))
        requests.append(
            qe.QueryRequest(
                limit=limit,
                query=qe.Query.Nearest(sparse, using=LEXICAL_VECTOR),
                filter=where,
                with_payload=False,
                with_vector=[LEXICAL_VECTOR],
            )
        )
    return requests


def matched(wanted: AbstractSet[int], vector: Any) -> dict[int, float]:
    """The query's terms (`wanted`) a hit's lexical vector holds, with their weights."""
    sparse = vector.get(LEXICAL_VECTOR) if isinstance(vector, dict) else None
    return held(wanted, sparse.indices, sparse.values) if sparse is not None else {}


def ranked(answers: list[list[Any]], dense: bool, terms: SparseTerms | None) -> tuple[list[RankedHit], list[RankedHit]]:
    """The answers of `signal_requests` as (dense hits, lexical hits with the query's terms they hold)."""
    found = [RankedHit(h.id, h.score) for h in answers[0]] if dense else []  # the engine gives UUIDs and floats
    wanted = set(terms.indices) if terms else set()
    words = [RankedHit(h.id, h.score, matched(wanted, h.vector)) for h in answers[-1]] if terms else []
    return found, words


def ids_without_lexical(shard: qe.EdgeShard, page: int) -> list[uuid.UUID]:
    """Every point that lacks its lexical vector (blocking: run it off the event loop)."""
    ids: list[uuid.UUID] = []
    offset: Any = None
    while True:
        request = qe.ScrollRequest(offset=offset, limit=page, filter=NO_LEXICAL, with_payload=False, with_vector=False)
        records, offset = shard.scroll(request)
        ids.extend(parse_id(r.id) for r in records)
        if offset is None:
            return ids

"""The lexical signal on a Qdrant server (qdrant-client): how points carry it and how both signals are queried.

The same shape as `edge_lexical.py`: the dense vector is the collection's unnamed vector, the lexical one the
named sparse vector `lexical.LEXICAL_VECTOR`, scored with Qdrant's IDF modifier.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import Any

from qdrant_client import models as qm

from kgents.resonance.index_common import parse_id
from kgents.resonance.lexical import LEXICAL_VECTOR, SparseTerms, held
from kgents.resonance.protocols import IndexPoint, RankedHit

LEXICAL_PARAMS = qm.SparseVectorParams(modifier=qm.Modifier.IDF)
NO_LEXICAL = qm.Filter(must_not=[qm.HasVectorCondition(has_vector=LEXICAL_VECTOR)])
"""The points that lack their lexical vector (coherency counts them stale)."""


def point(entry: IndexPoint, vector: list[float], lexical: bool) -> qm.PointStruct:
    """The server's point: the dense vector, and the lexical one where the collection keeps it (an entry
    without a content word gets an empty one, so it is never taken for a point that lost it)."""
    if not lexical:
        return qm.PointStruct(id=str(entry.id), vector=vector, payload=entry.payload.to_dict())
    terms = entry.lexical or SparseTerms((), ())
    sparse = qm.SparseVector(indices=list(terms.indices), values=list(terms.values))
    return qm.PointStruct(
        id=str(entry.id), vector={"": vector, LEXICAL_VECTOR: sparse}, payload=entry.payload.to_dict()
    )


def signal_requests(
    vector: list[float] | None, terms: SparseTerms | None, where: qm.Filter, limit: int
) -> list[qm.QueryRequest]:
    """The dense query (if a vector), then the lexical one (if terms), both under the same filter."""
    requests: list[qm.QueryRequest] = []
    if vector is not None:
        requests.append(qm.QueryRequest(query=vector, filter=where, limit=limit, with_payload=False))
    if terms:
        sparse = qm.SparseVector(indices=list(terms.indices), values=list(terms.values))
        requests.append(
            qm.QueryRequest(
                query=sparse,
                using=LEXICAL_VECTOR,
                filter=where,
                limit=limit,
                with_payload=False,
                with_vector=[LEXICAL_VECTOR],
            )
        )
    return requests


def matched(wanted: AbstractSet[int], vector: Any) -> dict[int, float]:
    """The query's terms (`wanted`) a hit's lexical vector holds, with their weights."""
    sparse = vector.get(LEXICAL_VECTOR) if isinstance(vector, dict) else None
    return held(wanted, sparse.indices, sparse.values) if isinstance(sparse, qm.SparseVector) else {}


def ranked(answers: list[list[Any]], dense: bool, terms: SparseTerms | None) -> tuple[list[RankedHit], list[RankedHit]]:
    """The answers of `signal_requests` as (dense hits, lexical hits with the query's terms they hold)."""
    found = [RankedHit(parse_id(h.id), float(h.score)) for h in answers[0]] if dense else []
    wanted = set(terms.indices) if terms else set()
    words = [RankedHit(parse_id(h.id), float(h.score), matched(wanted, h.vector)) for h in answers[-1]] if terms else []
    return found, words

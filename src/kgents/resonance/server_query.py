"""The server index's conditions: the search filter (persona apart from the `EntryFilter`), the version guard
of a write, and the stored versions read back. The same shape as `edge_query.py`, in qdrant-client's models.
"""

from __future__ import annotations

import uuid

from qdrant_client import models as qm

from kgents.garden.filters import EntryFilter
from kgents.resonance.index_common import filter_terms


def persona_filter(persona: str) -> qm.Filter:
    """Every point of `persona` (the payload index on `persona` answers it)."""
    return qm.Filter(must=[qm.FieldCondition(key="persona", match=qm.MatchValue(value=persona))])


def search_filter(persona: str, flt: EntryFilter) -> qm.Filter:
    terms = filter_terms(flt)
    must: list[qm.Condition] = [qm.FieldCondition(key="persona", match=qm.MatchValue(value=persona))]
    if terms.stages:
        must.append(qm.FieldCondition(key="lifecycle", match=qm.MatchAny(any=terms.stages)))
    if terms.entry_types:
        must.append(qm.FieldCondition(key="entry_type", match=qm.MatchAny(any=terms.entry_types)))
    must.extend(qm.FieldCondition(key="tags", match=qm.MatchValue(value=tag)) for tag in terms.tags)
    for key, (low, below) in terms.ranges.items():
        must.append(qm.FieldCondition(key=key, range=qm.Range(gte=low, lt=below)))
    must_not: list[qm.Condition] = [
        qm.FieldCondition(key="lifecycle", match=qm.MatchValue(value=s)) for s in terms.excluded_stages
    ]
    return qm.Filter(must=must, must_not=must_not or None)


def not_newer(entry_id: uuid.UUID, version: int) -> qm.Filter:
    """The point `entry_id` if its stored version is at most `version` (a stale write matches nothing)."""
    return qm.Filter(
        must=[
            qm.HasIdCondition(has_id=[str(entry_id)]),
            qm.FieldCondition(key="version", range=qm.Range(lte=version)),
        ]
    )

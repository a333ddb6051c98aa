"""The embedded index's engine-side conditions: the search filter (persona apart from the `EntryFilter`), the
version guard of a write, and the stored versions read back."""

from __future__ import annotations

import uuid
from typing import Any

import qdrant_edge as qe

from kgents.garden.filters import EntryFilter
from kgents.resonance.index_common import filter_terms


def persona_filter(persona: str) -> qe.Filter:
    """Every point of `persona` (the payload index on `persona` answers it)."""
    return qe.Filter(must=[qe.FieldCondition("persona", match=qe.MatchValue(persona))])


def search_filter(persona: str, flt: EntryFilter) -> qe.Filter:
    terms = filter_terms(flt)
    must: list[Any] = [qe.FieldCondition("persona", match=qe.MatchValue(persona))]
    if terms.stages:
        must.append(qe.FieldCondition("lifecycle", match=qe.MatchAny(terms.stages)))
    if terms.entry_types:
        must.append(qe.FieldCondition("entry_type", match=qe.MatchAny(terms.entry_types)))
    must.extend(qe.FieldCondition("tags", match=qe.MatchValue(tag)) for tag in terms.tags)
    for key, (low, below) in terms.ranges.items():
        must.append(qe.FieldCondition(key, range=qe.RangeFloat(gte=low, lt=below)))
    must_not: list[Any] = [qe.FieldCondition("lifecycle", match=qe.MatchValue(s)) for s in terms.excluded_stages]
    return qe.Filter(must=must, must_not=must_not or None)


def not_newer(entry_id: uuid.UUID, version: int) -> qe.Filter:
    """The point `entry_id` if its stored version is at most `version` (a stale write matches nothing)."""
    return qe.Filter(
        must=[qe.HasIdCondition({entry_id}), qe.FieldCondition("version", range=qe.RangeFloat(lte=version))]
    )

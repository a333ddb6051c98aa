"""`recall`: one walk from the face to the index and back, each floor passed once.

The query is checked here; the index state is read once; the query is embedded once; the index searches with the
filter (persona given apart from it); the hits are hydrated from the truth in one round trip and kept only if the
truth still passes the filter (the index may lag by milliseconds).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from kgents.errors import ValidationError
from kgents.garden.filters import EntryFilter
from kgents.garden.model import check_text
from kgents.memory.api import RecallHit
from kgents.resonance.protocols import IndexHit
from kgents.synapse.apply import embed
from kgents.synapse.runtime import Synapse

MAX_LIMIT = 200
OVERFETCH = 2


def check_recall(query: str, limit: int, min_score: float | None) -> None:
    if not isinstance(query, str) or not query.strip():
        raise ValidationError("a recall needs some text")
    check_text(query, "the recall text")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be between 1 and {MAX_LIMIT} (got {limit!r:.20})")
    if min_score is not None and (isinstance(min_score, bool) or not isinstance(min_score, int | float)):
        raise ValidationError(f"min_score must be a number (got {min_score!r:.20})")


async def recall(
    synapse: Synapse,
    persona: str,
    query: str,
    limit: int,
    flt: EntryFilter,
    min_score: float | None,
    explain: bool,
) -> list[RecallHit]:
    """Entries of `persona` by meaning, best first, hydrated from the truth (persona checked by the caller)."""
    check_recall(query, limit, min_score)
    # The embedded index has one owner, this process, so no one else can switch its collection: its state is read
    # at open. On the real triad a reindex elsewhere may switch it: one read per recall.
    state = synapse.state if synapse.in_process else await synapse.refresh_state()
    embedder = synapse.embedders(state.active.embedder)
    vector = (await embed(embedder, [query]))[0]
    if not np.any(vector):  # no word the embedder knows (e.g. only emoji): nothing is close to it
        return []
    fetch = limit * OVERFETCH
    # Leaving COMPOST out in the index halves its speed; the truth leaves it out anyway, so the index is asked
    # without that condition first, and with it only if COMPOST crowded the page out.
    loose = replace(flt, include_compost=True) if not flt.lifecycles and not flt.include_compost else flt
    for asked in dict.fromkeys((loose, flt)):
        hits = await synapse.index.search(state.active.collection, vector, persona, asked, fetch, min_score)
        found = await _hydrate(synapse, persona, hits, flt, limit, explain)
        if len(found) == limit or len(hits) < fetch:
            break
    return found


async def _hydrate(
    synapse: Synapse, persona: str, hits: list[IndexHit], flt: EntryFilter, limit: int, explain: bool
) -> list[RecallHit]:
    """The hits the truth still holds and `flt` accepts, best first, at most `limit`."""
    rows = await synapse.store.get_many(persona, [h.id for h in hits])
    found: list[RecallHit] = []
    for hit in hits:
        entry = rows.get(hit.id)
        if entry is None or not flt.accepts(entry):
            continue
        why = {"dense": {"score": hit.score, "rank": len(found) + 1}} if explain else {}
        found.append(RecallHit(entry, hit.score, why))
        if len(found) == limit:
            break
    return found

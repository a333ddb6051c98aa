"""`recall`: one walk from the face to the index and back, each floor passed once.

The query is checked here; the index state is read once; the query is embedded once; the index finds the dense and
the lexical candidates with the filter inside both searches (persona given apart from it), and they are fused
(`synapse.recall`); the hits are hydrated from the truth in one round trip and kept only if the truth still passes
the filter (the index may lag by milliseconds).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kgents.errors import ValidationError
from kgents.garden.filters import EntryFilter
from kgents.garden.model import check_text, parse_enum
from kgents.memory.api import RecallHit
from kgents.synapse.fusion import Fused, RecallMode
from kgents.synapse.runtime import Synapse

MAX_LIMIT = 200


def check_recall(query: str, limit: int, min_score: float | None) -> None:
    if not isinstance(query, str) or not query.strip():
        raise ValidationError("a recall needs some text")
    check_text(query, "the recall text")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be between 1 and {MAX_LIMIT} (got {limit!r:.20})")
    if min_score is not None and (isinstance(min_score, bool) or not isinstance(min_score, int | float)):
        raise ValidationError(f"min_score must be a number (got {min_score!r:.20})")


def explained(f: Fused) -> dict[str, Any]:
    """What `explain=True` shows of one hit: each signal's rank (None where it did not find it) and the fused score."""
    return {"dense_rank": f.dense_rank, "lexical_rank": f.lexical_rank, "fused": f.score}


async def recall(
    synapse: Synapse,
    persona: str,
    query: str,
    limit: int,
    flt: EntryFilter,
    min_score: float | None,
    explain: bool,
    mode: str = "hybrid",
) -> list[RecallHit]:
    """Entries of `persona` by meaning and by words, best first (fused score; or one signal's own in `mode`
    dense / lexical), hydrated from the truth (persona checked by the caller)."""
    check_recall(query, limit, min_score)
    signals = parse_enum(RecallMode, mode, "mode")
    # The embedded index has one owner, this process, so no one else can switch its collection: its state is read
    # at open. On the real triad a reindex elsewhere may switch it: one read per recall.
    state = synapse.state if synapse.in_process else await synapse.refresh_state()
    hybrid = synapse.recall()
    # Leaving COMPOST out in the index slows it; the truth leaves it out anyway, so the index is asked without that
    # condition first, and with it only if COMPOST crowded a candidate pool or the page.
    loose = replace(flt, include_compost=True) if not flt.lifecycles and not flt.include_compost else flt
    found: list[RecallHit] = []
    for asked in dict.fromkeys((loose, flt)):
        fused = await hybrid.candidates(
            state.active.collection, state.active.embedder, query, persona, asked, signals
        )
        found = await _hydrate(synapse, persona, fused, flt, limit, min_score, explain)
        if len(found) == limit or len(fused) < hybrid.pool:
            break
    return found


async def _hydrate(
    synapse: Synapse,
    persona: str,
    fused: list[Fused],
    flt: EntryFilter,
    limit: int,
    min_score: float | None,
    explain: bool,
) -> list[RecallHit]:
    """The candidates the truth still holds and `flt` accepts, best first, at most `limit`, page by page."""
    kept = [f for f in fused if min_score is None or f.score >= min_score]
    found: list[RecallHit] = []
    step = limit * 2
    for start in range(0, len(kept), step):
        page = kept[start : start + step]
        rows = await synapse.store.get_many(persona, [f.id for f in page])
        for f in page:
            entry = rows.get(f.id)
            if entry is None or not flt.accepts(entry):
                continue
            found.append(RecallHit(entry, f.score, explained(f) if explain else {}))
            if len(found) == limit:
                return found
    return found

"""`recall` on the face: the one walk of `synapse.recall.HybridRecall` (checked, embedded once, both signals in one
index call with the filter inside both, fused, hydrated from the truth), its hits in the face's shape."""

from __future__ import annotations

from datetime import datetime

from kgents.clock import check_asked_at
from kgents.garden.filters import EntryFilter
from kgents.garden.model import parse_enum
from kgents.memory.api import RecallHit
from kgents.synapse import recall as synapse_recall
from kgents.synapse.fusion import RecallMode
from kgents.synapse.runtime import Synapse


async def recall(
    synapse: Synapse,
    persona: str,
    query: str,
    limit: int,
    flt: EntryFilter,
    min_score: float | None,
    explain: bool,
    mode: str = "hybrid",
    asked_at: datetime | None = None,
) -> list[RecallHit]:
    """Entries of `persona` by meaning and by words, best first (fused score; or one signal's own in `mode`
    dense / lexical), hydrated from the truth (persona checked by the caller)."""
    synapse_recall.check_query(query, limit, min_score)
    signals = parse_enum(RecallMode, mode, "mode")
    hits = await synapse.recall().recall(
        persona, query, limit, flt, mode=signals, min_score=min_score, asked_at=check_asked_at(asked_at)
    )
    return hits if explain else [RecallHit(h.entry, h.score) for h in hits]

"""Writes a caller may send again without fear: the same `remember` (by entry id) and the same `forget`.

A write whose answer was lost (a dropped connection, a server that died, `outcome_unknown`) is safe to resend only
if doing it twice is doing it once. `remember` with an entry id the caller chose (`RemoteMemory` always chooses
one) finds the entry already stored on the second try and answers it, instead of planting a duplicate or failing
with a conflict; `forget` of an entry this persona had and that is gone answers as the first delete did.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from kgents.errors import ConflictError
from kgents.garden.model import GardenEntry
from kgents.garden.records import Operation
from kgents.garden.service import PersonaGarden


async def stored_already(
    garden: PersonaGarden, entries: Sequence[GardenEntry], conflict: ConflictError
) -> list[GardenEntry]:
    """After `conflict` on planting `entries`: the entries as stored when every one of them is already there under
    its id with the same content and type (the same remember sent again); else the conflict, naming an id used by
    other content when that is why."""
    found = await garden.store.get_many(garden.persona, [e.id for e in entries])
    if not found:
        raise conflict
    for entry in entries:
        stored = found.get(entry.id)
        if stored is None:
            raise conflict
        if stored.content != entry.content or stored.entry_type is not entry.entry_type:
            raise ConflictError(
                f"nothing planted: entry id {entry.id} is already stored with other content; a remember sent"
                " again must carry the same content and type"
            )
    return [found[e.id] for e in entries]


async def forgotten_already(garden: PersonaGarden, ref: uuid.UUID | str) -> uuid.UUID | None:
    """The id of `ref` when it names (by its whole id) an entry this persona had and the last thing that happened
    to it was its deletion: a forget sent again. None otherwise (a prefix cannot name a deleted entry)."""
    try:
        entry_id = ref if isinstance(ref, uuid.UUID) else uuid.UUID(str(ref).strip())
    except ValueError:
        return None
    records = await garden.store.history(garden.persona, entry_id)
    return entry_id if records and records[-1].operation is Operation.DELETE else None

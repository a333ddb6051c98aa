"""`PersonaGarden`: one persona's memory, with every rule of planting, nurturing and growing in one place.

It sits above any `GardenStore`, so the embedded and the PostgreSQL backends behave identically. Changes are
read-modify-write with a compare-and-set on the version, retried on conflict: two processes nurturing the same
entry at once both land, one after the other.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any

from kgents.clock import utcnow
from kgents.errors import ConflictError, LifecycleError, NotFoundError, ValidationError
from kgents.garden import lifecycle as rules
from kgents.garden.filters import EntryFilter
from kgents.garden.model import (
    MAX_EVIDENCE_ITEMS,
    EntryType,
    GardenEntry,
    Lifecycle,
    as_tuple,
    check_confidence,
    check_evidence,
    check_persona,
    parse_enum,
)
from kgents.garden.records import AuditRecord, GardenQuery, Lease, OrderBy, check_id_prefix
from kgents.garden.store import GardenStore

UPDATABLE: Mapping[str, str] = MappingProxyType(
    {
        "content": "content",
        "type": "entry_type",
        "tags": "tags",
        "confidence": "confidence",
        "evidence": "evidence",
        "affinities": "eigenvector_affinities",
    }
)
"""The one list of what `update` may change, by the names the face, the HTTP API and the docs use, each with the
entry field it sets (`evidence` replaces the list; nurture and reassess append to it)."""
MAX_CAS_ATTEMPTS = 64
MAX_PLANT_MANY = 100_000
"""Largest batch one plant_many call takes (one transaction)."""


class PersonaGarden:
    """The garden of one persona: no call here can read or change another persona's entries."""

    def __init__(self, store: GardenStore, persona: str) -> None:
        self.store = store
        self.persona = check_persona(persona)

    # -- planting -------------------------------------------------------------------------------------------------
    def new_entry(
        self,
        content: str,
        entry_type: EntryType | str,
        *,
        confidence: float = 0.5,
        lifecycle: Lifecycle | str = Lifecycle.SEED,
        tags: Iterable[str] = (),
        evidence: Iterable[str] = (),
        eigenvector_affinities: Mapping[str, float] | None = None,
        entry_id: uuid.UUID | None = None,
        observed_at: datetime | None = None,
    ) -> GardenEntry:
        """A validated entry of this persona, not yet stored (`observed_at` defaults to its planting time)."""
        stage = parse_enum(Lifecycle, lifecycle, "lifecycle")
        if stage is Lifecycle.COMPOST:
            raise LifecycleError("an entry cannot be planted as COMPOST")
        return GardenEntry(
            id=entry_id or uuid.uuid4(),
            persona=self.persona,
            content=content,
            entry_type=parse_enum(EntryType, entry_type, "entry_type"),
            lifecycle=stage,
            confidence=confidence,
            tags=as_tuple(tags, "tags"),
            evidence=as_tuple(evidence, "evidence"),
            eigenvector_affinities=dict(eigenvector_affinities or {}),
            observed_at=observed_at,
        )

    async def plant(self, content: str, entry_type: EntryType | str, **fields: Any) -> GardenEntry:
        entry = self.new_entry(content, entry_type, **fields)
        return (await self.store.insert([entry]))[0]

    async def plant_many(self, entries: Sequence[GardenEntry], lease: Lease | None = None) -> list[GardenEntry]:
        """Plant all entries in one transaction: all of them, or (on any error) none. Returns them as stored (an
        entry planted under the id of a deleted one continues its version)."""
        if len(entries) > MAX_PLANT_MANY:
            raise ValidationError(f"{len(entries):,} entries in one batch; the limit is {MAX_PLANT_MANY:,}")
        ids: set[uuid.UUID] = set()
        for index, entry in enumerate(entries):
            if not isinstance(entry, GardenEntry):
                raise ValidationError(f"entry {index} is not a GardenEntry (got {type(entry).__name__})")
            if entry.persona != self.persona:
                raise ValidationError(f"entry {index} belongs to persona {entry.persona!r}, not {self.persona!r}")
            if entry.lifecycle is Lifecycle.COMPOST:
                raise LifecycleError(f"entry {index}: an entry cannot be planted as COMPOST")
            if entry.id in ids:
                raise ValidationError(f"entry {index} repeats the id {entry.id}")
            ids.add(entry.id)
        return await self.store.insert(list(entries), lease)

    # -- reading --------------------------------------------------------------------------------------------------
    async def get(self, entry_id: uuid.UUID | str) -> GardenEntry:
        entry = await self.store.get(self.persona, _as_uuid(entry_id))
        if entry is None:
            raise NotFoundError(f"no garden entry {entry_id} for persona {self.persona!r}")
        return entry

    async def resolve(self, id_or_prefix: str) -> GardenEntry:
        """The entry whose id is, or starts with, `id_or_prefix` (at least 4 characters, unique)."""
        text = id_or_prefix.strip().lower()
        try:
            return await self.get(uuid.UUID(text))
        except ValueError:
            pass
        if len(text) < 4:
            raise ValidationError(f"an id prefix needs at least 4 characters (got {id_or_prefix!r:.40})")
        matches = await self.store.query(self.persona, None, GardenQuery(limit=2), id_prefix=check_id_prefix(text))
        if not matches:
            raise NotFoundError(f"no garden entry with id {id_or_prefix!r:.40} for persona {self.persona!r}")
        if len(matches) > 1:
            raise ValidationError(f"the id prefix {id_or_prefix!r:.40} matches several entries; give more of it")
        return matches[0]

    async def query(self, flt: EntryFilter | None = None, page: GardenQuery | None = None) -> list[GardenEntry]:
        """Entries passing `flt` (None: every entry, COMPOST too), ordered and paged by `page`."""
        return await self.store.query(self.persona, flt, page)

    async def count(self, flt: EntryFilter | None = None) -> int:
        return await self.store.count(self.persona, flt)

    async def find_trees(self, min_confidence: float = 0.7, limit: int = 100) -> list[GardenEntry]:
        """Mature patterns: TREE entries at or above `min_confidence`, most confident first."""
        trees = EntryFilter(lifecycles=(Lifecycle.TREE,), min_confidence=min_confidence)
        return await self.store.query(self.persona, trees, GardenQuery(order_by=OrderBy.CONFIDENCE, limit=limit))

    async def history(self, entry_id: uuid.UUID | str) -> list[AuditRecord]:
        records = await self.store.history(self.persona, _as_uuid(entry_id))
        if not records:
            raise NotFoundError(f"no history for garden entry {entry_id} of persona {self.persona!r}")
        return records

    # -- changing -------------------------------------------------------------------------------------------------
    async def nurture(
        self,
        entry_id: uuid.UUID | str,
        *,
        evidence: str | Sequence[str] | None = None,
        confidence_delta: float | None = None,
        confidence: float | None = None,
    ) -> GardenEntry:
        """Strengthen an entry: add evidence (a line, or several at once), move confidence (default +0.05), promote
        its stage if earned."""
        if confidence is not None and confidence_delta is not None:
            raise ValidationError("give either confidence or confidence_delta, not both")
        if confidence is not None:
            check_confidence(confidence)
        if confidence_delta is not None:
            if isinstance(confidence_delta, bool) or not isinstance(confidence_delta, int | float):
                raise ValidationError("confidence_delta must be a number")
            if not 0.0 <= confidence_delta <= 1.0:
                raise ValidationError(
                    f"nurture only strengthens: its confidence delta must be in [0, 1] (got {confidence_delta:g});"
                    " to lower the confidence, reassess the entry (`kgents garden reassess`, Memory.reassess)"
                )
        lines = [] if evidence is None else [evidence] if isinstance(evidence, str) else list(evidence)
        new_evidence = check_evidence(lines) if lines else ()

        def change(entry: GardenEntry) -> GardenEntry:
            if entry.lifecycle is Lifecycle.COMPOST:
                raise LifecycleError("a COMPOST entry cannot be nurtured; revive it first")
            if confidence is not None:
                level = confidence
            else:
                step = rules.NURTURE_STEP if confidence_delta is None else confidence_delta
                level = min(1.0, max(0.0, entry.confidence + step))
            kept = (*entry.evidence, *new_evidence)[-MAX_EVIDENCE_ITEMS:]
            return entry.evolve(
                confidence=round(level, 12),
                evidence=kept,
                lifecycle=rules.promoted(entry.lifecycle, level),
                last_nurtured=utcnow(),
            )

        return await self._update(entry_id, change)

    async def transition(self, entry_id: uuid.UUID | str, target: Lifecycle | str) -> GardenEntry:
        stage = parse_enum(Lifecycle, target, "lifecycle")
        return await self._update(entry_id, lambda e: e.evolve(lifecycle=rules.check_transition(e.lifecycle, stage)))

    async def grow(self, entry_id: uuid.UUID | str) -> GardenEntry:
        """Move an entry one stage forward."""
        return await self._update(entry_id, lambda e: e.evolve(lifecycle=rules.next_stage(e.lifecycle)))

    async def compost(
        self, entry_id: uuid.UUID | str, *, successor: uuid.UUID | None = None, note: str | None = None
    ) -> GardenEntry:
        """To COMPOST; `successor`: the entry superseding it (tag `superseded-by:<id>` and a line of evidence)."""
        if successor is None and note is None:
            return await self.transition(entry_id, Lifecycle.COMPOST)
        lines = [*([note] if note else []), *([f"{SUPERSEDED_NOTE}{successor}"] if successor else [])]
        added = check_evidence(lines)

        def change(e: GardenEntry) -> GardenEntry:
            tags = (*e.tags, f"{SUPERSEDED_BY}{successor}") if successor else e.tags
            return e.evolve(
                lifecycle=rules.check_transition(e.lifecycle, Lifecycle.COMPOST),
                tags=tags,
                evidence=(*e.evidence, *added)[-MAX_EVIDENCE_ITEMS:],
            )

        return await self._update(entry_id, change)

    async def reassess(
        self, entry_id: uuid.UUID | str, confidence: float, *, evidence: str | None = None
    ) -> GardenEntry:
        """Confidence set up or down, the stage following it both ways (COMPOST stays COMPOST); not a nurture."""
        level = check_confidence(confidence)
        added = check_evidence([evidence]) if evidence is not None else ()

        def change(e: GardenEntry) -> GardenEntry:
            if e.lifecycle is Lifecycle.COMPOST:
                raise LifecycleError("a COMPOST entry cannot be reassessed; revive it first")
            return e.evolve(
                confidence=round(level, 12),
                lifecycle=rules.stage_for_confidence(level),
                evidence=(*e.evidence, *added)[-MAX_EVIDENCE_ITEMS:],
            )

        return await self._update(entry_id, change)

    async def revive(self, entry_id: uuid.UUID | str) -> GardenEntry:
        """Bring a COMPOST entry back as a SEED (the only way out of COMPOST)."""
        return await self._update(
            entry_id,
            lambda e: e.evolve(
                lifecycle=rules.check_transition(e.lifecycle, Lifecycle.SEED, revive=True), last_nurtured=utcnow()
            ),
        )

    async def update(self, entry_id: uuid.UUID | str, **fields: Any) -> GardenEntry:
        """Change any of `UPDATABLE` (by those names); the lifecycle moves only by its own rules: with
        `confidence` it follows the new level both ways, as in `reassess` (a COMPOST entry's is refused)."""
        unknown = set(fields) - set(UPDATABLE)
        if unknown:
            raise ValidationError(f"cannot update {', '.join(sorted(unknown))}; updatable: {', '.join(UPDATABLE)}")
        changes = {UPDATABLE[name]: value for name, value in fields.items()}
        for listed in ("tags", "evidence"):
            if listed in changes:
                changes[listed] = as_tuple(changes[listed], listed)
        if "confidence" in changes:
            level = round(check_confidence(changes["confidence"]), 12)
            changes |= {"confidence": level, "lifecycle": rules.stage_for_confidence(level)}

        def change(e: GardenEntry) -> GardenEntry:
            if "confidence" in changes and e.lifecycle is Lifecycle.COMPOST:
                raise LifecycleError("a COMPOST entry's confidence cannot change; revive it first")
            return e.evolve(**changes)

        return await self._update(entry_id, change)

    async def delete(self, entry_id: uuid.UUID | str) -> None:
        if not await self.store.delete(self.persona, _as_uuid(entry_id)):
            raise NotFoundError(f"no garden entry {entry_id} for persona {self.persona!r}")

    async def _update(self, entry_id: uuid.UUID | str, change: Callable[[GardenEntry], GardenEntry]) -> GardenEntry:
        key = _as_uuid(entry_id)
        for _ in range(MAX_CAS_ATTEMPTS):
            current = await self.get(key)
            changed = change(current)
            if await self.store.replace(changed, expected_version=current.version):
                return changed
        raise ConflictError(f"garden entry {entry_id} kept changing under us; gave up after {MAX_CAS_ATTEMPTS} tries")


SUPERSEDED_BY = "superseded-by:"
"""Tag prefix on a COMPOST entry naming the entry that superseded it."""
SUPERSEDED_NOTE = "superseded by "
"""Evidence prefix of the line that says the same in words."""


def _as_uuid(value: uuid.UUID | str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value).strip())
    except ValueError:
        raise ValidationError(f"not a garden entry id: {value!r:.40}") from None

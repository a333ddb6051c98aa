"""One persona's memory as JSON lines: `kgents export` writes it, `kgents import` reads it back.

The format: a header line `{"format": "kgents-memory", "version": 1, "persona": …, "entries": N, "souls": M}`,
then one line per garden entry (every field but the persona, which the header names: id, version, planted_at,
last_nurtured, evidence, tags, affinities, …) oldest observed first, then one line per soul snapshot (its JSON
state kept as the text the anchor holds). Lines are canonical JSON (sorted keys, no spaces, UTF-8), so an export
of an import of an export is the same bytes.

Import is all or nothing: every line is checked before anything is written, and a bad one is named by its line
number. It is idempotent by id: an entry or soul already there is left as it is; new ones keep their ids,
versions and timestamps (so imported memories keep their dates). Imported as another persona, entries take ids
derived from theirs and that persona (`retargeted_id`), so the copy lives beside the original in one anchor.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from kgents.errors import ConflictError, ValidationError
from kgents.garden.model import GardenEntry, check_persona
from kgents.garden.records import MAX_QUERY_LIMIT, GardenQuery, OrderBy, page_key
from kgents.garden.service import SUPERSEDED_BY, SUPERSEDED_NOTE
from kgents.garden.store import GardenStore
from kgents.soul.model import SoulState, check_soul_id
from kgents.soul.snapshot import SnapshotStore

FORMAT = "kgents-memory"
FORMAT_VERSION = 1
_PAGE = MAX_QUERY_LIMIT
"""Entries read per query: most memories come out of one query (one consistent read)."""


@dataclass(frozen=True, slots=True)
class SoulRecord:
    """One soul snapshot as exported: its id, revision and state JSON (as the anchor holds it)."""

    soul_id: str
    revision: int
    state: str


@dataclass(frozen=True, slots=True)
class MemoryBundle:
    """A persona's memory as read from an export, checked line by line."""

    persona: str
    entries: tuple[GardenEntry, ...]
    souls: tuple[SoulRecord, ...]


@dataclass(frozen=True, slots=True)
class ImportReport:
    persona: str
    entries_added: int
    entries_present: int
    souls_added: int
    souls_present: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "persona": self.persona,
            "entries_added": self.entries_added,
            "entries_present": self.entries_present,
            "souls_added": self.souls_added,
            "souls_present": self.souls_present,
        }


def canonical(data: Mapping[str, Any]) -> str:
    """One line of the format: sorted keys, no spaces, UTF-8 text as is."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def entry_line(entry: GardenEntry) -> str:
    data = entry.to_dict()
    del data["persona"]
    return canonical({"kind": "entry", **data})


def soul_line(soul: SoulRecord) -> str:
    return canonical({"kind": "soul", "soul_id": soul.soul_id, "revision": soul.revision, "state": soul.state})


def bundle_lines(bundle: MemoryBundle) -> list[str]:
    """The export's lines (without line ends), header first."""
    header = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "persona": bundle.persona,
        "entries": len(bundle.entries),
        "souls": len(bundle.souls),
    }
    return [canonical(header), *map(entry_line, bundle.entries), *map(soul_line, bundle.souls)]


async def read_bundle(store: GardenStore, snapshots: SnapshotStore, persona: str) -> MemoryBundle:
    """Every entry of `persona` (COMPOST too), oldest observed first, and every soul snapshot of it. Pages go by
    key (observed, id: neither ever changes, and the anchor's index on them answers each page), so an entry that
    stays is never left out, one planted meanwhile may be, and none appears twice."""
    persona = check_persona(persona)
    found: dict[uuid.UUID, GardenEntry] = {}
    after: tuple[Any, uuid.UUID] | None = None
    while True:
        query = GardenQuery(order_by=OrderBy.OBSERVED, descending=False, limit=_PAGE, after=after)
        page = await store.query(persona, None, query)
        for entry in page:  # an id planted again meanwhile (a later observed time): once, as it is now
            found.pop(entry.id, None)
            found[entry.id] = entry
        if len(page) < _PAGE:
            break
        after = page_key(page[-1], OrderBy.OBSERVED)
    souls: list[SoulRecord] = []
    for soul_id, revision in await snapshots.souls(persona):
        state = await snapshots.get(persona, soul_id)
        if state is not None:
            souls.append(SoulRecord(soul_id, revision, state))
    return MemoryBundle(persona, tuple(found.values()), tuple(souls))


def _object(text: str, number: int) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"line {number}: not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ValidationError(f"line {number}: expected a JSON object")
    return data


def _header(data: Mapping[str, Any]) -> tuple[str, int, int]:
    if data.get("format") != FORMAT:
        raise ValidationError(f"line 1: not a kgents memory export (the header's format must be {FORMAT!r})")
    if data.get("version") != FORMAT_VERSION:
        raise ValidationError(
            f"line 1: export format version {data.get('version')!r:.20} is not one this kgents reads ({FORMAT_VERSION})"
        )
    counts = data.get("entries"), data.get("souls")
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts):
        raise ValidationError("line 1: the header's entries and souls must be counts")
    return check_persona(data.get("persona")), int(data["entries"]), int(data["souls"])


def _soul(data: Mapping[str, Any], persona: str) -> SoulRecord:
    soul_id, revision, state = check_soul_id(data.get("soul_id")), data.get("revision"), data.get("state")
    if not isinstance(revision, int) or isinstance(revision, bool) or revision < 1:
        raise ValidationError(f"a soul's revision must be a positive integer (got {revision!r:.20})")
    if not isinstance(state, str):
        raise ValidationError("a soul's state must be its JSON text")
    parsed = SoulState.from_json(state)
    if (parsed.soul_id, parsed.persona) != (soul_id, persona):
        raise ValidationError(f"soul {soul_id}'s state belongs to soul {parsed.soul_id} of persona {parsed.persona}")
    return SoulRecord(soul_id, revision, state)


def parse_bundle(lines: Iterable[str]) -> MemoryBundle:
    """Check every line of an export (header, entries, souls, counts, no repeated id); ValidationError naming the
    first bad line's number. Blank lines are not allowed (a file cut short or glued together is a bad file)."""
    persona, want_entries, want_souls = "", 0, 0
    entries: list[GardenEntry] = []
    souls: list[SoulRecord] = []
    seen: set[Any] = set()
    number = 0
    for number, raw in enumerate(lines, start=1):
        data = _object(raw.rstrip("\r\n"), number)
        if number == 1:
            persona, want_entries, want_souls = _header(data)
            continue
        kind = data.pop("kind", None)
        try:
            if kind == "entry":
                if souls:
                    raise ValidationError("entries come before souls")
                entry = GardenEntry.from_dict({**data, "persona": persona})
                key: Any = entry.id
                entries.append(entry)
            elif kind == "soul":
                soul = _soul(data, persona)
                key = ("soul", soul.soul_id)
                souls.append(soul)
            else:
                raise ValidationError(f"unknown kind {kind!r:.40} (entry or soul)")
        except (ValidationError, TypeError, ValueError) as exc:
            raise ValidationError(f"line {number}: {exc}") from None
        if key in seen:
            raise ValidationError(f"line {number}: {key if kind == 'entry' else key[1]} appears twice")
        seen.add(key)
    if number == 0:
        raise ValidationError("line 1: the file is empty (an export starts with its header line)")
    if (len(entries), len(souls)) != (want_entries, want_souls):
        raise ValidationError(
            f"line {number + 1}: the header announces {want_entries} entries and {want_souls} souls, the file holds"
            f" {len(entries)} and {len(souls)} (cut short?)"
        )
    return MemoryBundle(persona, tuple(entries), tuple(souls))


def retargeted_id(entry_id: uuid.UUID, persona: str) -> uuid.UUID:
    """The id an entry takes when imported as another persona: derived from its own id and that persona (UUID v5),
    so the copy never collides with the original and importing the same file again finds what it planted."""
    return uuid.uuid5(entry_id, persona)


def _retarget_pointers(entry: GardenEntry, persona: str) -> dict[str, Any]:
    """The entry's supersession pointers (tag `superseded-by:<id>`, evidence `superseded by <id>`) moved to the
    copies' ids, so the copies point at each other as the originals did."""

    def moved(text: str, prefix: str) -> str:
        if not text.startswith(prefix):
            return text
        try:
            return prefix + str(retargeted_id(uuid.UUID(text.removeprefix(prefix)), persona))
        except ValueError:
            return text

    return {
        "id": retargeted_id(entry.id, persona),
        "persona": persona,
        "tags": tuple(moved(t, SUPERSEDED_BY) for t in entry.tags),
        "evidence": tuple(moved(e, SUPERSEDED_NOTE) for e in entry.evidence),
    }


def retarget(bundle: MemoryBundle, persona: str) -> MemoryBundle:
    """The bundle as the memory of another persona: each entry under an id of its own (`retargeted_id`), with the
    pointers between entries moved along; the file's own persona leaves it as it is."""
    persona = check_persona(persona)
    if persona == bundle.persona:
        return bundle
    entries = tuple(replace(e, **_retarget_pointers(e, persona)) for e in bundle.entries)
    souls = []
    for soul in bundle.souls:
        soul_id = persona if soul.soul_id == bundle.persona else soul.soul_id
        state = replace(SoulState.from_json(soul.state), soul_id=soul_id, persona=persona)
        souls.append(SoulRecord(soul_id, soul.revision, state.to_json()))
    return MemoryBundle(persona, entries, tuple(souls))


async def write_bundle(store: GardenStore, snapshots: SnapshotStore, bundle: MemoryBundle) -> ImportReport:
    """Insert the entries not there yet (one transaction, ids, versions and dates kept) and the souls without a
    snapshot. An id the persona cannot use (held by another one) is a ConflictError that does not say whose it
    is, and nothing is written."""
    present = await store.get_many(bundle.persona, [e.id for e in bundle.entries]) if bundle.entries else {}
    new = [e for e in bundle.entries if e.id not in present]
    if new:
        try:
            await store.insert(new)
        except ConflictError:
            raise ConflictError(
                f"nothing imported: some of the file's entry ids cannot be used for {bundle.persona};"
                " import it with --persona NAME to give its entries ids of their own"
            ) from None
    known = dict(await snapshots.souls(bundle.persona))
    added = 0
    for soul in bundle.souls:
        if soul.soul_id not in known and await snapshots.put(
            bundle.persona, soul.soul_id, soul.revision, soul.state, 0
        ):
            added += 1
    return ImportReport(bundle.persona, len(new), len(present), added, len(bundle.souls) - added)

"""`kgents garden …`: plant, look at, nurture and retire the entries of one persona's garden."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from kgents.cli.context import confirmed, console, print_json, read_input, run, state
from kgents.cli.render import entries_table, entry_table, history_table, short_id
from kgents.errors import NotFoundError, ValidationError
from kgents.garden.filters import EntryFilter
from kgents.garden.model import EntryType, GardenEntry, Lifecycle, parse_enum
from kgents.garden.records import AuditRecord, GardenQuery, OrderBy
from kgents.garden.service import PersonaGarden
from kgents.garden.store import open_store

T = TypeVar("T")

app = typer.Typer(help="Plant, list, nurture and retire persona memories.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
LifecycleOpt = Annotated[list[str] | None, typer.Option("--lifecycle", "-l", help="Only these stages (repeatable).")]
TypeOpt = Annotated[list[str] | None, typer.Option("--type", "-t", help="Only these types (repeatable).")]
TagOpt = Annotated[list[str] | None, typer.Option("--tag", "-T", help="Must carry this tag (repeatable: all).")]
MinConfidenceOpt = Annotated[float | None, typer.Option("--min-confidence", help="At least this confident.")]
EntryId = Annotated[str, typer.Argument(help="Entry id, or a unique prefix of it (at least 4 characters).")]


def with_garden(ctx: typer.Context, work: Callable[[PersonaGarden], Awaitable[T]]) -> T:
    settings = state(ctx).settings()

    async def go() -> T:
        store = await open_store(settings)
        try:
            return await work(PersonaGarden(store, settings.persona))
        finally:
            await store.close()

    return run(go)


def parse_affinities(pairs: list[str]) -> dict[str, float]:
    """`["aesthetic=0.8", …]` as a mapping; the model checks names and ranges."""
    result: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ValidationError(f"an affinity is written name=value (got {pair!r:.40})")
        try:
            result[name.strip()] = float(value)
        except ValueError:
            raise ValidationError(f"affinity {name.strip()!r:.40} needs a number (got {value!r:.20})") from None
    return result


def _one_line_end_less(text: str) -> str:
    """The text without the one line end a file or `echo` puts after it."""
    return text.removesuffix("\n").removesuffix("\r")


def content_from(content: str | None, file: Path | None) -> str:
    """The content argument, or stdin for `-`, or the file of `--file` (a long text cannot pass through a shell);
    stdin and files lose their one final line end."""
    if (content is None) == (file is None):
        raise typer.BadParameter("give the content as an argument, '-' for stdin, or --file PATH (one of them)")
    if file is None and content != "-":
        return str(content)
    return _one_line_end_less(read_input(file or "-"))


def report(entry: GardenEntry, as_json: bool, message: str) -> None:
    """The entry as JSON, or one line about what happened to it."""
    if as_json:
        print_json(entry.to_dict())
    else:
        console.print(f"[cyan]{short_id(entry.id)}[/] {message}")


@app.command()
def plant(
    ctx: typer.Context,
    content: Annotated[
        str | None, typer.Argument(help="What the persona holds, in words ('-': read it from stdin).")
    ] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Read the content from this file.")] = None,
    entry_type: Annotated[
        str, typer.Option("--type", "-t", help="PREFERENCE, PATTERN, VALUE, BEHAVIOR or INSIGHT.")
    ] = "PREFERENCE",
    confidence: Annotated[float, typer.Option("--confidence", "-c", help="How sure, in [0, 1].")] = 0.5,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-T", help="A tag (repeatable).")] = None,
    evidence: Annotated[list[str] | None, typer.Option("--evidence", "-e", help="Evidence (repeatable).")] = None,
    affinity: Annotated[list[str] | None, typer.Option("--affinity", "-a", help="axis=value (repeatable).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Plant a new entry (as a SEED); it is searchable when this returns (through the face, as `remember`)."""
    text = content_from(content, file)
    affinities = parse_affinities(affinity or [])
    settings = state(ctx).settings()

    async def work() -> GardenEntry:
        from kgents.memory.factory import open_memory

        memory = await open_memory(settings)  # the home's server, else this process applying its write inline
        try:
            return await memory.remember(
                text,
                type=entry_type,
                confidence=confidence,
                tags=tag or (),
                evidence=evidence or (),
                affinities=affinities,
            )
        finally:
            await memory.close()

    entry = run(work)
    if as_json:
        print_json(entry.to_dict())
    else:
        console.print(
            f"planted [cyan]{short_id(entry.id)}[/] {entry.entry_type.value.lower()} as {entry.lifecycle.value}"
        )


@app.command("list")
def list_entries(
    ctx: typer.Context,
    lifecycle: LifecycleOpt = None,
    entry_type: TypeOpt = None,
    tag: TagOpt = None,
    min_confidence: MinConfidenceOpt = None,
    text: Annotated[str | None, typer.Option("--text", "-s", help="Content contains this (any case).")] = None,
    order: Annotated[
        str, typer.Option("--order", help="confidence, planted, nurtured, observed or content.")
    ] = "confidence",
    ascending: Annotated[bool, typer.Option("--asc", help="Smallest first.")] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """List entries, filtered and ordered."""
    flt = EntryFilter(**filter_fields(lifecycle, entry_type, tag, min_confidence), text=text, include_compost=True)
    page = GardenQuery(order_by=_order(order), descending=not ascending, limit=limit)

    async def work(g: PersonaGarden) -> tuple[list[GardenEntry], int]:
        return await g.query(flt, page), await g.count(flt)

    entries, total = with_garden(ctx, work)
    if as_json:
        print_json({"total": total, "entries": [e.to_dict() for e in entries]})
        return
    persona = state(ctx).settings().persona
    if not entries:
        console.print(f"no entries match in the garden of {persona}")
        return
    console.print(entries_table(entries, f"garden of {persona}: {len(entries)} of {total}"))


def filter_fields(
    lifecycle: list[str] | None, entry_type: list[str] | None, tag: list[str] | None, min_confidence: float | None
) -> dict[str, Any]:
    """The filter flags shared by `list` and `search`, parsed (a bad stage or type is one clear error)."""
    return {
        "lifecycles": tuple(parse_enum(Lifecycle, v, "lifecycle") for v in lifecycle or ()),
        "entry_types": tuple(parse_enum(EntryType, v, "entry_type") for v in entry_type or ()),
        "tags": tuple(tag or ()),
        "min_confidence": min_confidence,
    }


def _order(text: str) -> OrderBy:
    try:
        return OrderBy(text.strip().lower())
    except ValueError:
        choices = ", ".join(o.value for o in OrderBy)
        raise ValidationError(f"order must be one of {choices} (got {text!r:.30})") from None


@app.command()
def show(ctx: typer.Context, entry_id: EntryId, as_json: JsonFlag = False) -> None:
    """Show one entry in full."""
    entry = with_garden(ctx, lambda g: g.resolve(entry_id))
    if as_json:
        print_json(entry.to_dict())
    else:
        console.print(entry_table(entry))


@app.command()
def nurture(
    ctx: typer.Context,
    entry_id: EntryId,
    evidence: Annotated[str | None, typer.Option("--evidence", "-e", help="What supports it now.")] = None,
    delta: Annotated[
        float | None, typer.Option("--delta", "-d", help="Add this to the confidence, in [0, 1] (default 0.05).")
    ] = None,
    confidence: Annotated[float | None, typer.Option("--confidence", "-c", help="Set confidence to this.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Strengthen an entry; it grows a stage when its confidence has earned it."""

    async def change(g: PersonaGarden, entry: GardenEntry) -> GardenEntry:
        return await g.nurture(entry.id, evidence=evidence, confidence_delta=delta, confidence=confidence)

    _confidence_change(ctx, entry_id, "nurtured", change, as_json)


@app.command()
def reassess(
    ctx: typer.Context,
    entry_id: EntryId,
    confidence: Annotated[float, typer.Option("--confidence", "-c", help="The new confidence, up or down.")],
    evidence: Annotated[str | None, typer.Option("--evidence", "-e", help="Why it changed.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Set an entry's confidence up or down; its stage follows both ways (nurture only strengthens)."""

    async def change(g: PersonaGarden, entry: GardenEntry) -> GardenEntry:
        return await g.reassess(entry.id, confidence, evidence=evidence)

    _confidence_change(ctx, entry_id, "reassessed", change, as_json)


def _confidence_change(
    ctx: typer.Context,
    entry_id: str,
    done: str,
    change: Callable[[PersonaGarden, GardenEntry], Awaitable[GardenEntry]],
    as_json: bool,
) -> None:
    """`change` on the entry `entry_id` names, then the entry (JSON) or a line: confidence and stage before → after."""

    async def work(g: PersonaGarden) -> tuple[GardenEntry, GardenEntry]:
        entry = await g.resolve(entry_id)
        return entry, await change(g, entry)

    before, after = with_garden(ctx, work)
    if as_json:
        print_json(after.to_dict())
        return
    moved = f", {before.lifecycle.value} → {after.lifecycle.value}" if before.lifecycle != after.lifecycle else ""
    console.print(
        f"{done} [cyan]{short_id(after.id)}[/]: confidence {before.confidence:.2f} → {after.confidence:.2f}{moved}"
    )


@app.command()
def grow(
    ctx: typer.Context,
    entry_id: EntryId,
    to: Annotated[str | None, typer.Option("--to", help="Go straight to this stage (forward only).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Move an entry one stage forward (or to --to)."""

    async def work(g: PersonaGarden) -> GardenEntry:
        entry = await g.resolve(entry_id)
        return await (g.transition(entry.id, to) if to else g.grow(entry.id))

    entry = with_garden(ctx, work)
    report(entry, as_json, f"is now {entry.lifecycle.value}")


@app.command()
def compost(ctx: typer.Context, entry_id: EntryId, as_json: JsonFlag = False) -> None:
    """Retire an entry to COMPOST (kept, no longer grown; `revive` brings it back)."""
    report(with_garden(ctx, lambda g: _resolve_then(g, entry_id, g.compost)), as_json, "composted")


@app.command()
def revive(ctx: typer.Context, entry_id: EntryId, as_json: JsonFlag = False) -> None:
    """Bring a COMPOST entry back as a SEED."""
    report(with_garden(ctx, lambda g: _resolve_then(g, entry_id, g.revive)), as_json, "revived as SEED")


@app.command()
def delete(
    ctx: typer.Context,
    entry_id: EntryId,
    yes: Annotated[bool, typer.Option("--yes", help="Really delete (the audit trail keeps its history).")] = False,
) -> None:
    """Delete an entry for good (its history stays in the audit trail)."""
    confirmed(yes, "deleting is final (`compost` retires an entry instead)")

    async def work(g: PersonaGarden) -> str:
        entry = await g.resolve(entry_id)
        await g.delete(entry.id)
        return short_id(entry.id)

    console.print(f"[cyan]{with_garden(ctx, work)}[/] deleted")


@app.command()
def history(ctx: typer.Context, entry_id: EntryId, as_json: JsonFlag = False) -> None:
    """Every change of an entry, oldest first (from the audit trail)."""

    async def work(g: PersonaGarden) -> tuple[str, list[AuditRecord]]:
        try:
            key = str((await g.resolve(entry_id)).id)
        except NotFoundError:
            key = entry_id  # a deleted entry keeps its history; ask for it by its full id
        return key, await g.history(key)

    key, records = with_garden(ctx, work)
    if as_json:
        print_json([r.to_dict() for r in records])
    else:
        console.print(history_table(records, f"history of {key}"))


async def _resolve_then(g: PersonaGarden, entry_id: str, action: Callable[..., Awaitable[T]]) -> T:
    return await action((await g.resolve(entry_id)).id)

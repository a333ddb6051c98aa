"""`kgents garden search`: find entries by meaning, hydrated from the anchor (the truth)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from kgents.cli.context import console, print_json, run, state
from kgents.cli.render import clip, confidence_bar, short_id
from kgents.garden.model import EntryType, Lifecycle, parse_enum

if TYPE_CHECKING:
    from kgents.synapse.search import SearchHit


def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="What to look for, in words.")],
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=200, help="At most this many.")] = 10,
    lifecycle: Annotated[
        list[str] | None, typer.Option("--lifecycle", "-l", help="Only these stages (repeatable).")
    ] = None,
    entry_type: Annotated[list[str] | None, typer.Option("--type", "-t", help="Only these types (repeatable).")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-T", help="Must carry this tag (repeatable: all).")] = None,
    min_confidence: Annotated[float | None, typer.Option("--min-confidence", help="At least this confident.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Search this persona's garden by meaning ("keep things small" finds "I prefer minimal code")."""
    from kgents.synapse.runtime import open_synapse
    from kgents.synapse.search import SearchFilters

    settings = state(ctx).settings()
    filters = SearchFilters(
        lifecycles=tuple(parse_enum(Lifecycle, v, "lifecycle") for v in lifecycle or ()),
        entry_types=tuple(parse_enum(EntryType, v, "entry_type") for v in entry_type or ()),
        tags=tuple(tag or ()),
        min_confidence=min_confidence,
    )

    async def go() -> list[SearchHit]:
        synapse = await open_synapse(settings)
        try:
            if synapse.in_process:
                await synapse.drain()
            return await synapse.search().find_by_semantic_similarity(settings.persona, query, limit, filters)
        finally:
            await synapse.close()

    hits = run(go)
    if as_json:
        print_json({"query": query, "persona": settings.persona, "hits": [h.to_dict() for h in hits]})
        return
    if not hits:
        console.print(f"nothing in the garden of {settings.persona} matches that", markup=False)
        return
    for h in hits:
        console.print(
            f"[cyan]{short_id(h.entry.id)}[/] {h.score:.3f}  {confidence_bar(h.entry.confidence, 6)}"
            f"  {h.entry.lifecycle.value:<7} {clip(h.entry.content, 70)}",
            highlight=False,
        )

"""`kgents garden search`: find entries by meaning, hydrated from the anchor (the truth)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from kgents.cli.context import console, print_json, run, state
from kgents.cli.garden_cmd import (
    JsonFlag,
    LifecycleOpt,
    MinConfidenceOpt,
    TagOpt,
    TypeOpt,
    filter_fields,
)
from kgents.cli.render import clip, confidence_bar, short_id

if TYPE_CHECKING:
    from kgents.synapse.search import SearchHit


def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="What to look for, in words.")],
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=200, help="At most this many.")] = 10,
    lifecycle: LifecycleOpt = None,
    entry_type: TypeOpt = None,
    tag: TagOpt = None,
    min_confidence: MinConfidenceOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Search this persona's garden by meaning ("simplicity" finds "I prefer minimal code")."""
    from kgents.synapse.runtime import open_synapse
    from kgents.synapse.search import SearchFilters

    settings = state(ctx).settings()
    filters = SearchFilters(**filter_fields(lifecycle, entry_type, tag, min_confidence))

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

"""`kgents garden search`: find entries by meaning, hydrated from the anchor (the truth)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from kgents.cli.context import console, err_console, print_json, run, state
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
    from kgents.memory.api import RecallHit
    from kgents.synapse.runtime import Synapse
    from kgents.synapse.search import SearchHit

CATCH_UP_S = 60.0


async def index_lag(synapse: Synapse, wait_s: float) -> tuple[int, bool]:
    """Outbox events the index has not caught up with (after draining them here for up to `wait_s` on the
    embedded index), and whether that is worth a warning: always in-process, else only with no live relay."""
    from kgents.synapse.metrics import QUEUE_DEPTH_CAP

    if synapse.in_process:
        return (await synapse.catch_up(wait_s)).pending, True
    pending = await synapse.queue.queue_depth(QUEUE_DEPTH_CAP)
    return pending, bool(pending) and not (await synapse.metrics()).relays_alive


def lag_warning(pending: int, in_process: bool) -> str:
    how = "search again to let it catch up" if in_process else "start `kgents synapse run`"
    return f"warning: the index is {pending:,} events behind the garden; these results may miss recent changes ({how})"


def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="What to look for, in words.")],
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=200, help="At most this many.")] = 10,
    lifecycle: LifecycleOpt = None,
    entry_type: TypeOpt = None,
    tag: TagOpt = None,
    min_confidence: MinConfidenceOpt = None,
    wait: Annotated[
        float,
        typer.Option("--wait", min=0, help="Seconds the embedded index may take to catch up before answering."),
    ] = CATCH_UP_S,
    as_json: JsonFlag = False,
) -> None:
    """Search this persona's garden by meaning ("simplicity" finds "I prefer minimal code")."""
    from kgents.garden.filters import EntryFilter

    settings = state(ctx).settings()
    filters = EntryFilter(**filter_fields(lifecycle, entry_type, tag, min_confidence), include_compost=True)

    async def go() -> tuple[Sequence[SearchHit | RecallHit], int, bool, bool]:
        from kgents.cli.index_access import open_local_or_server
        from kgents.memory.remote import RemoteMemory
        from kgents.server.discovery import ServerInfo

        opened = await open_local_or_server(settings)
        if isinstance(opened, ServerInfo):  # the server relays in-process: it is behind only for a moment
            async with RemoteMemory(opened, settings.persona) as memory:
                found = await memory.recall(query, limit=limit, filters=filters)
                pending = int((await memory.status())["pending"])
                return found, pending, True, True
        synapse = opened
        try:
            pending, warn = await index_lag(synapse, wait)
            hits = await synapse.search().find_by_semantic_similarity(settings.persona, query, limit, filters)
            return hits, pending, warn, synapse.in_process
        finally:
            await synapse.close()

    hits, pending, warn, in_process = run(go)
    if pending and warn:
        err_console.print(lag_warning(pending, in_process), markup=False, highlight=False, soft_wrap=True)
    if as_json:
        data = {"query": query, "persona": settings.persona, "pending": pending, "hits": [h.to_dict() for h in hits]}
        print_json(data)
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

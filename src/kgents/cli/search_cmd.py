"""`kgents garden search`: find entries by meaning, hydrated from the anchor (the truth)."""

from __future__ import annotations

from dataclasses import dataclass
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
    from kgents.config import Settings
    from kgents.garden.filters import EntryFilter
    from kgents.home.discovery import ServerInfo
    from kgents.synapse.hit import RecallHit
    from kgents.synapse.runtime import Synapse

CATCH_UP_S = 60.0


async def index_lag(synapse: Synapse, wait_s: float) -> tuple[int, bool]:
    """Outbox events the index has not caught up with (after draining them here for up to `wait_s` on the
    embedded index), and whether that is worth a warning: always in-process, else only with no live relay."""
    from kgents.synapse.metrics import QUEUE_DEPTH_CAP

    if synapse.in_process:
        from kgents.cli.index_access import catch_up_shown

        return (await catch_up_shown(synapse, wait_s)).pending, True
    pending = await synapse.queue.queue_depth(QUEUE_DEPTH_CAP)
    return pending, bool(pending) and not (await synapse.metrics()).relays_alive


def lag_warning(pending: int, in_process: bool) -> str:
    how = "search again to let it catch up" if in_process else "start `kgents synapse run`"
    return f"warning: the index is {pending:,} events behind the garden; these results may miss recent changes ({how})"


def rank(value: int | None) -> str:
    return "-" if value is None else str(value)


def header(mode: str, explain: bool) -> str:
    """The column names above the hits: which score is shown (fused in [0, 1], or one signal's own)."""
    kind = {"hybrid": "fused", "dense": "cosine", "lexical": "bm25"}[mode]
    ranks = f"  {'dense':>5} {'lex':>4}" if explain else ""
    return f"{'id':<8} {kind:>6}{ranks}  {'confidence':<11}  {'stage':<7} content"


def hit_line(h: RecallHit, explain: bool) -> str:
    ranks = f"  {rank(h.dense_rank):>5} {rank(h.lexical_rank):>4}" if explain else ""
    return (
        f"[cyan]{short_id(h.entry.id)}[/] {h.score:>6.3f}{ranks}  {confidence_bar(h.entry.confidence, 6):<11}"
        f"  {h.entry.lifecycle.value:<7} {clip(h.entry.content, 70)}"
    )


def read_as(hit: RecallHit) -> str:
    """What a hybrid recall read its query as (the time it names, the people it names), or ""."""
    why = hit.why or {}
    parts = []
    if time := why.get("time"):
        span = f"{time['after'] or '…'} to {time['before'] or '…'}"
        parts.append(f"time: {time['phrase']!r} = {span} ({time['use']})")
    if people := why.get("people"):
        parts.append(f"people: {', '.join(people)}")
    return "read as: " + "; ".join(parts) if parts else ""


ModeOpt = Annotated[
    str, typer.Option("--mode", help="hybrid (meaning and words, fused), dense (meaning) or lexical (words).")
]
LimitOpt = Annotated[int, typer.Option("--limit", "-n", min=1, max=200, help="At most this many.")]
IncludeCompostOpt = Annotated[bool, typer.Option("--include-compost", help="Show COMPOST entries too.")]
MinScoreOpt = Annotated[
    float | None,
    typer.Option(
        "--min-score",
        min=0.0,
        max=1.0,
        help="Leave out hits scoring below this (hybrid: relevance; 0.08 is the bar the chat and MCP use).",
    ),
]
ExplainOpt = Annotated[
    bool,
    typer.Option("--explain", help="Show each hit's dense and lexical rank, and the time and people the query names."),
]
WaitOpt = Annotated[
    float,
    typer.Option("--wait", min=0, help="Seconds the embedded index may take to catch up before answering."),
]


@dataclass(frozen=True, slots=True)
class Asked:
    """One search as the command was asked it."""

    query: str
    limit: int
    filters: EntryFilter
    mode: str
    min_score: float | None


@dataclass(frozen=True, slots=True)
class Found:
    """The hits, how far the index is behind the garden, and whether to warn of it."""

    hits: list[RecallHit]
    pending: int
    warn: bool
    in_process: bool


def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="What to look for, in words.")],
    limit: LimitOpt = 10,
    lifecycle: LifecycleOpt = None,
    entry_type: TypeOpt = None,
    tag: TagOpt = None,
    min_confidence: MinConfidenceOpt = None,
    mode: ModeOpt = "hybrid",
    include_compost: IncludeCompostOpt = False,
    min_score: MinScoreOpt = None,
    explain: ExplainOpt = False,
    wait: WaitOpt = CATCH_UP_S,
    as_json: JsonFlag = False,
) -> None:
    """Search this persona's garden by meaning and by words ("simplicity" finds "I prefer minimal code"; a rare
    name finds the entries that name it). COMPOST entries are left out unless --include-compost."""
    from kgents.garden.filters import EntryFilter

    settings = state(ctx).settings()
    filters = EntryFilter(**filter_fields(lifecycle, entry_type, tag, min_confidence), include_compost=include_compost)
    check_mode(mode)
    asked = Asked(query, limit, filters, mode, min_score)
    found = run(lambda: find(settings, asked, wait))
    if found.pending and found.warn:
        err_console.print(lag_warning(found.pending, found.in_process), markup=False, highlight=False, soft_wrap=True)
    if as_json:
        data = {
            "query": query,
            "persona": settings.persona,
            "mode": mode,
            "pending": found.pending,
            "hits": [h.to_dict() for h in found.hits],
        }
        print_json(data)
        return
    show_hits(found.hits, settings.persona, mode, explain)


def check_mode(mode: str) -> None:
    from kgents.synapse.fusion import RecallMode

    modes = [m.value for m in RecallMode]
    if mode not in modes:
        raise typer.BadParameter(f"must be one of {', '.join(modes)} (got {mode!r})", param_hint="--mode")


async def find(settings: Settings, asked: Asked, wait: float) -> Found:
    """Ask the home's server when one runs, else search here (after letting the embedded index catch up)."""
    from kgents.cli.index_access import open_local_or_server
    from kgents.home.discovery import ServerInfo

    opened = await open_local_or_server(settings)
    if isinstance(opened, ServerInfo):
        return await find_on_server(opened, settings.persona, asked)
    try:
        return await find_here(opened, settings.persona, asked, wait)
    finally:
        await opened.close()


async def find_on_server(server: ServerInfo, persona: str, asked: Asked) -> Found:
    """Through the home's server, which relays in-process: it is behind only for a moment (always warned of)."""
    from kgents.memory.remote import RemoteMemory

    async with RemoteMemory(server, persona) as memory:
        hits = await memory.recall(
            asked.query,
            limit=asked.limit,
            filters=asked.filters,
            min_score=asked.min_score,
            explain=True,
            mode=asked.mode,
        )
        pending = int((await memory.status())["pending"])
    return Found(hits, pending, True, True)


async def find_here(synapse: Synapse, persona: str, asked: Asked, wait: float) -> Found:
    from kgents.synapse.fusion import RecallMode

    pending, warn = await index_lag(synapse, wait)
    hits = await synapse.recall().recall(
        persona, asked.query, asked.limit, asked.filters, mode=RecallMode(asked.mode), min_score=asked.min_score
    )
    return Found(hits, pending, warn, synapse.in_process)


def show_hits(hits: list[RecallHit], persona: str, mode: str, explain: bool) -> None:
    """The hits as a table (with --explain: what the query was read as, and each signal's rank)."""
    if not hits:
        console.print(f"nothing in the garden of {persona} matches that", markup=False)
        return
    if explain and (read := read_as(hits[0])):
        console.print(read, markup=False, highlight=False, soft_wrap=True)
    console.print(header(mode, explain), markup=False, highlight=False, style="bold")
    for h in hits:
        console.print(hit_line(h, explain), highlight=False)

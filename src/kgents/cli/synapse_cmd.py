"""`kgents synapse …`: the CDC relay (run it), its health (status), and its repairs (reconcile, reindex).

The relay's libraries (numpy, the index clients) are imported inside the commands, so other commands start fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from kgents.cli.context import confirmed, console, print_json, run, state
from kgents.cli.exit_codes import ExitCode, exit_code_for_level
from kgents.cli.graph_cmd import graph_line
from kgents.cli.progress import LongWork
from kgents.clock import utcnow
from kgents.config import Settings
from kgents.errors import BackendUnavailableError, ConfigError, IndexLockedError
from kgents.garden.store import open_store
from kgents.health.model import Level
from kgents.synapse.queue import queue_on

if TYPE_CHECKING:
    from kgents.memory.remote import RemoteMemory
    from kgents.synapse.metrics import SynapseMetrics
    from kgents.synapse.relay import RelayConfig
    from kgents.synapse.runtime import Stack

T = TypeVar("T")

app = typer.Typer(help="Synapse, the relay that keeps the vector index in step with the anchor.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def with_stack(
    ctx: typer.Context,
    work: Callable[[Stack], Awaitable[T]],
    *,
    adopting: bool = False,
    recreate: bool = False,
    reindexing: bool = False,
    remote: Callable[[RemoteMemory], Awaitable[T]] | None = None,
    what: str = "this command",
) -> T:
    """Run `work` on the opened stack, or `remote` through the home's server when one runs (a command without a
    remote form is refused by name then); while another process owns the embedded index, wait for it.
    `recreate` lets a repair command remake a missing collection, `adopting` opens over an index the anchor does
    not feed yet (for `adopt`)."""
    from kgents.cli.index_access import local_or_remote

    settings = state(ctx).settings()
    return run(
        lambda: local_or_remote(
            settings,
            settings.persona,
            work,
            remote,
            what=what,
            adopting=adopting,
            recreate=recreate,
            reindexing=reindexing,
        )
    )


def status_level(metrics: SynapseMetrics, coherency: float | None) -> Level:
    """CRITICAL when the breaker is open or coherency < 0.5; STRAINED when not fully coherent, dead letters exist
    or a backlog waits with no live relay; UNKNOWN when coherency could not be measured; else HEALTHY. The exit
    code follows from the level (`exit_code_for_level`), as for every status command."""
    if metrics.circuit_state == "OPEN" or (coherency is not None and coherency < 0.5):
        return Level.CRITICAL
    backlog_unserved = metrics.queue_depth and not metrics.relays_alive
    if (coherency is not None and coherency < 1.0) or metrics.dead_letters or backlog_unserved:
        return Level.STRAINED
    return Level.UNKNOWN if coherency is None else Level.HEALTHY


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def fmt_age(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def coherency_line(report: dict[str, Any] | None, note: str | None) -> str:
    if report is None:
        return f"coherency  not measured ({note})" if note else "coherency  not measured"
    line = (
        f"coherency  {report['coherency_with_truth']:.4f}  matched {report['matched']:,} · stale {report['stale']:,}"
        f" · missing {report['missing']:,} · orphaned {report['orphaned']:,} (of {report['total']:,}, all personas)"
    )
    if report.get("age_s") is not None:
        line += f", measured {fmt_age(report['age_s'])} ago"
    return f"{line}  [{note}]" if note else line


def with_age(report: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The report with the age of its figure (seconds since it was measured)."""
    measured = datetime.fromisoformat(str(report["measured_at"]))
    return {**report, "age_s": round(max(0.0, (now - measured).total_seconds()), 3)}


def status_lines(metrics: SynapseMetrics, active: dict[str, Any]) -> list[str]:
    depth = f"{metrics.queue_depth:,}{'+' if metrics.queue_depth_capped else ''}"
    return [
        f"index      {active['collection']} (embedder {active['embedder']})",
        f"queue      {depth} pending, oldest {fmt_age(metrics.oldest_pending_age_s)}",
        f"latency    commit→applied p50 {fmt_ms(metrics.latency_p50_ms)}, p95 {fmt_ms(metrics.latency_p95_ms)}",
        f"relays     {metrics.relays_alive} alive{relay_modes(metrics)},"
        f" last heartbeat {fmt_age(metrics.last_heartbeat_age_s)} ago,"
        f" circuit {metrics.circuit_state}",
        f"events     processed {metrics.processed:,} · retried {metrics.retried:,} · dead {metrics.dead:,}"
        f" · {metrics.throughput_per_s:.1f}/s · dead letters {metrics.dead_letters:,}",
    ]


def relay_modes(metrics: SynapseMetrics) -> str:
    """` (1 in-process drain)`, ` (2 expired)`: what the alive count does not say."""
    drains = sum(1 for r in metrics.relays if r.alive and r.stats.get("mode") == "in-process")
    expired = sum(1 for r in metrics.relays if not r.alive)
    parts = [f"{drains} in-process drain{'s' if drains != 1 else ''}"] if drains else []
    parts += [f"{expired} expired"] if expired else []
    return f" ({', '.join(parts)})" if parts else ""


@dataclass
class StatusData:
    metrics: SynapseMetrics
    coherency: dict[str, Any] | None
    note: str | None
    index: dict[str, Any] | None
    dead_letters: list[dict[str, Any]]
    fault: str | None = None
    """What is broken in the index itself and the command that repairs it (a missing collection)."""
    graph: dict[str, Any] | None = None
    """The index's HNSW graph (`IndexGraph.to_dict()`), where the index was reached."""


def fault_lines(data: StatusData) -> list[str]:
    """The index fault this command found and the last error of every live relay, one line each."""
    lines = [f"fault      {data.fault}"] if data.fault else []
    for relay in data.metrics.relays:
        if relay.alive and relay.stats.get("last_error"):
            lines.append(f"error      {relay.relay_id}: {relay.stats['last_error']}")
    return lines


def _relay_coherency(metrics: SynapseMetrics) -> dict[str, Any] | None:
    """The freshest coherency a live relay measured (it owns the embedded index while it runs; it measures
    every few seconds). It carries no sample ids: those are shown only for the asking persona."""
    found = [r.stats["coherency"] for r in metrics.relays if r.alive and r.stats.get("coherency")]
    if not found:
        return None
    return {**max(found, key=lambda c: str(c["measured_at"])), "samples": {}}


STATUS_OWNER_WAIT_S = 5.0
"""`status` waits this long for a short-lived owner of the embedded index, then shows the relay's own figure."""


async def anchor_facts(settings: Settings) -> tuple[SynapseMetrics, list[dict[str, Any]], dict[str, Any] | None]:
    """Metrics, recent dead letters and the index state, from the anchor alone (any process may read it)."""
    from kgents.synapse.metrics import collect_metrics

    store = await open_store(settings)
    try:
        queue = queue_on(store.anchor)
        metrics = await collect_metrics(queue)
        letters = [d.to_dict() for d in await queue.dead_letters(5)]
        state = await queue.read_state()
    finally:
        await store.close()
    return metrics, letters, state.to_dict() if state else None


async def gather_status(settings: Settings, *, full: bool = False) -> StatusData:
    """Everything `status` shows. Through the home's server when one runs (it measures coherency now); when
    another process owns the embedded index, the coherency its relay measured last (from its heartbeat) stands
    in for a measurement of our own."""
    from kgents.cli.index_access import catch_up_shown, open_local_or_server
    from kgents.health.collect import DRAIN_TIMEOUT_S, embedded_default
    from kgents.home.discovery import ServerInfo
    from kgents.memory.remote import RemoteMemory
    from kgents.synapse.faults import MissingCollectionError

    try:
        opened = await open_local_or_server(settings, wait_s=STATUS_OWNER_WAIT_S)
    except (IndexLockedError, MissingCollectionError) as exc:
        metrics, letters, index = await anchor_facts(settings)
        if isinstance(exc, MissingCollectionError):
            missing = f"collection {exc.collection} is missing"
            return StatusData(metrics, None, missing, index, letters, str(exc))
        report = _relay_coherency(metrics)
        note = "as measured by the relay that owns the index" if report else str(exc)
        report = None if report is None else with_age(report, utcnow())
        return StatusData(metrics, report, note, index, letters)
    if isinstance(opened, ServerInfo):
        async with RemoteMemory(opened, settings.persona) as memory:
            measured = await memory.synapse_coherency(full=full)
            graph = (await memory.synapse_index()).get("graph")
        metrics, letters, index = await anchor_facts(settings)
        report = with_age(measured["coherency"], utcnow())
        note = f"measured now by the server that owns the index and relays for it, at {opened.url}"
        return StatusData(metrics, report, note, index, letters, graph=graph)
    stack = opened
    try:
        if embedded_default(settings):  # no relay runs: drain first, as `kgents status` and every command does
            await catch_up_shown(stack, DRAIN_TIMEOUT_S)
        report = with_age(await stack.coherency_figure(settings.persona, full=full), utcnow())
        letters = [d.to_dict() for d in await stack.queue.dead_letters(5)]
        graph = None if (found := await stack.graph()) is None else found.to_dict()
        return StatusData(await stack.metrics(), report, None, stack.state.to_dict(), letters, graph=graph)
    finally:
        await stack.close()


@app.command()
def status(
    ctx: typer.Context,
    as_json: JsonFlag = False,
    full: Annotated[
        bool, typer.Option("--full", help="compare every (id, version) of both sides, not only what changed")
    ] = False,
) -> None:
    """Queue, lag, relays, circuit and the measured coherency of the index with the anchor (by bucket: what
    changed since the last measurement; `--full`: everything, with sample ids).

    Operator-wide: the queue, relays and coherency counts cover every persona of the anchor; sample entry ids
    (stale, missing, orphaned) are only this persona's."""
    settings = state(ctx).settings()
    try:
        data = run(lambda: gather_status(settings, full=full))
    except BackendUnavailableError as exc:  # the anchor is down: that is the status, not a failure to report it
        _unreachable(str(exc), as_json)
    coherency = None if data.coherency is None else float(data.coherency["coherency_with_truth"])
    level = Level.CRITICAL if data.fault else status_level(data.metrics, coherency)
    code = exit_code_for_level(level)
    if as_json:
        print_json(
            {
                "status": code.name,
                "level": level.value,
                "fault": data.fault,
                "index": data.index,
                "graph": data.graph,
                "metrics": data.metrics.to_dict(),
                "coherency": data.coherency,
                "coherency_note": data.note,
                "recent_dead_letters": data.dead_letters,
            }
        )
    else:
        active = (data.index or {}).get("active") or {"collection": "-", "embedder": "-"}
        lines = status_lines(data.metrics, active)
        lines.insert(0, f"status     {level.value}")
        lines.insert(2, coherency_line(data.coherency, data.note))
        lines[3:3] = fault_lines(data)
        if (graph := graph_line(data.graph)) is not None:
            lines.insert(2, graph)
        for line in lines:
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        for letter in data.dead_letters:
            console.print(f"dead       {letter['entry_id'][:8]} at {letter['step']}: {letter['error']}", markup=False)
    raise typer.Exit(int(code))


def _unreachable(error: str, as_json: bool) -> NoReturn:
    """The anchor could not be reached: CRITICAL (exit 2) with the error, as every status command says it."""
    code = exit_code_for_level(Level.CRITICAL)
    if as_json:
        print_json({"status": code.name, "level": Level.CRITICAL.value, "error": error})
    else:
        console.print(f"status     {Level.CRITICAL.value}: {error}", markup=False, soft_wrap=True)
    raise typer.Exit(int(code))


@app.command("run")
def run_relay(
    ctx: typer.Context,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=10_000, help="Events per claim.")] = 256,
    poll: Annotated[float, typer.Option("--poll", min=0.01, help="Fallback poll interval in seconds.")] = 1.0,
    lease: Annotated[
        float, typer.Option("--lease", min=0.1, help="SQLite: seconds a claim stays exclusive (crash recovery).")
    ] = 30.0,
    once: Annotated[bool, typer.Option("--once", help="Drain what is due, then exit.")] = False,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Embedded default: the server's port (0: any free one).")
    ] = 0,
) -> None:
    """Relay outbox events into the index until SIGTERM / Ctrl-C (stops at a batch boundary).

    On the embedded default the relay must own the index, so this is `kgents serve` on loopback: every other
    command of the home goes through it while it runs."""

    from kgents.synapse.relay import RelayConfig

    settings = state(ctx).settings()
    if not settings.qdrant_url and not once:
        from kgents.cli.serve_cmd import run_server
        from kgents.home.discovery import DEFAULT_HOST

        processed = run_server(settings, DEFAULT_HOST, port)
        console.print(f"synapse stopped after {processed:,} events", markup=False)
        return

    config = RelayConfig(batch_size=batch_size, lease_s=lease, poll_interval_s=poll, idle_poll_s=min(poll, 0.1))

    async def there(memory: RemoteMemory) -> int:
        console.print(f"the kgents server at {memory.server.url} relays for this home", markup=False)
        return 0

    processed = with_stack(ctx, lambda s: relay_here(s, config, once=once), remote=there)
    console.print(f"synapse stopped after {processed:,} events", markup=False)


async def relay_here(stack: Stack, config: RelayConfig, *, once: bool) -> int:
    """Relay in this process: what is due (`once`), or until SIGTERM / Ctrl-C; the events processed."""
    relay = stack.relay(config)
    if once:
        drained = await relay.drain(timeout_s=3600)
        await relay.beats.report()
        return drained
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, relay.stop)
    console.print(
        f"synapse {relay.relay_id} relaying {stack.settings.describe_anchor()} → {stack.state.active.collection}",
        markup=False,
    )
    await relay.run()
    return relay.stats.processed


@app.command()
def reconcile(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Compare every entry with the index and repair missing, stale and orphaned points."""

    async def local(s: Stack) -> dict[str, Any]:
        return (await s.reconcile()).to_dict()

    report = with_stack(ctx, local, recreate=True, remote=lambda m: m.synapse_reconcile())
    if as_json:
        print_json(report)
    else:
        b, a = report["before"], report["after"]
        console.print(
            f"before  coherency {b['coherency_with_truth']:.4f} (stale {b['stale']}, missing {b['missing']},"
            f" orphaned {b['orphaned']})",
            markup=False,
        )
        console.print(
            f"after   coherency {a['coherency_with_truth']:.4f} ({report['repaired']} repaired,"
            f" {len(report['failed'])} failed)",
            markup=False,
        )
    if not a_coherent(report):
        raise typer.Exit(int(ExitCode.WARNING))


def a_coherent(report: dict[str, Any]) -> bool:
    """Whether reconcile left the index coherent with the anchor."""
    return bool(report["after"]["matched"] == report["after"]["total"])


@app.command()
def reindex(
    ctx: typer.Context,
    embedder: Annotated[
        str | None, typer.Option("--embedder", help="Embedder to rebuild with (default: the current one).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Re-embed every entry into a fresh collection, catch up, switch over atomically, drop the old one. The
    embedder: --embedder, else KGENTS_EMBEDDER, else the current one (the way to switch to a new KGENTS_EMBEDDER)."""
    configured = state(ctx).settings().embedder
    if embedder and configured and embedder != configured:
        raise ConfigError(
            f"KGENTS_EMBEDDER is {configured!r} but --embedder is {embedder!r}: the index would disagree with the"
            " setting; change one of them"
        )
    target = embedder or configured

    async def work(s: Stack) -> dict[str, Any]:
        name = target or s.state.active.embedder
        entries = sum((await s.store.personas()).values())
        async with LongWork(f"reindex with {name}", total=entries, unit="entries") as shown:
            return (await s.reindex(name, shown.update)).to_dict()

    report = with_stack(ctx, work, recreate=True, reindexing=True, remote=lambda m: m.synapse_reindex(target))
    if as_json:
        print_json(report)
    else:
        new, coherency = report["new"], report["coherency"]["coherency_with_truth"]
        console.print(
            f"reindexed {report['copied']:,} entries with {new['embedder']} into {new['collection']}"
            f" in {report['seconds']:.1f} s (coherency {coherency:.4f}); dropped {report['old']['collection']}",
            markup=False,
        )


@app.command()
def adopt(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", help="Really move the anchor over to this index.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Rebuild this index (KGENTS_HOME's or KGENTS_QDRANT_URL's) from the anchor and make it the one the anchor
    feeds; the index it fed before then refuses to relay or search."""
    confirmed(yes, "adopting moves the anchor over to this index for good")
    report = with_stack(ctx, lambda s: s.adopt(), adopting=True, what="adopt")
    if as_json:
        print_json(report.to_dict())
        return
    before = "an unknown index" if report.previous is None else report.previous.location
    console.print(
        f"the anchor now feeds {report.identity.location} (before: {before}): {report.copied:,} entries copied,"
        f" coherency {report.coherency.coherency_with_truth:.4f}",
        markup=False,
        soft_wrap=True,
    )

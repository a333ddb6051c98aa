"""`kgents soul …`: the soul's dialogue mode, eigenvectors and session; mode changes of other instances.

Every command recovers the soul first (cache → snapshot → new) and can say where it came from; `watch` streams
mode changes made by other K-gent processes and needs Redis (KGENTS_REDIS_URL).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

from kgents.axes import AXES
from kgents.cli.context import console, err_console, print_json, run, state
from kgents.cli.exit_codes import exit_code_for_level
from kgents.cli.render import ago, confidence_bar, format_value
from kgents.config import Settings, redact_url
from kgents.errors import ConfigError, ValidationError
from kgents.soul.embedded_spark import PUBSUB_NEEDS_REDIS
from kgents.soul.model import SoulState
from kgents.soul.service import SoulService
from kgents.soul.session import SoulSession, open_service, open_soul
from kgents.soul.spark import ModeChange

T = TypeVar("T")

app = typer.Typer(
    help="The Soul: dialogue mode, eigenvectors and session state, shared by every K-gent instance.",
    no_args_is_help=True,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
SoulOpt = Annotated[str | None, typer.Option("--soul", "-s", help="Soul id (default: the persona's own soul).")]


@app.callback()
def soul_root(
    ctx: typer.Context,
    redis_url: Annotated[
        str | None, typer.Option("--redis-url", help="Use Redis as the Spark (KGENTS_REDIS_URL).")
    ] = None,
) -> None:
    if redis_url is not None:
        state(ctx).overrides["redis_url"] = redis_url


def with_soul(ctx: typer.Context, soul: str | None, work: Callable[[SoulSession], Awaitable[T]]) -> T:
    settings = state(ctx).settings()

    async def go() -> T:
        async with await open_soul(settings, soul) as session:
            return await work(session)

    return run(go)


def _spark_name(settings: Settings) -> str:
    return f"Redis {redact_url(settings.redis_url)}" if settings.redis_url else "embedded (this process)"


@app.command()
def show(ctx: typer.Context, soul: SoulOpt = None, as_json: JsonFlag = False) -> None:
    """Show the soul: mode, eigenvectors, session counters, and where the state came from."""
    settings = state(ctx).settings()

    async def work(session: SoulSession) -> tuple[SoulSession, float | None]:
        return session, await session.service.cache_ttl(session.state.soul_id)

    session, ttl = with_soul(ctx, soul, work)
    recovery = session.recovery
    if as_json:
        print_json(
            {
                **recovery.to_dict(),
                "connect_ms": round(session.connect_ms, 3),
                "cache_ttl_s": ttl,
                "spark": _spark_name(settings),
                "anchor": settings.describe_anchor(),
            }
        )
        return
    s = recovery.state
    console.print(
        f"soul [bold]{s.soul_id}[/] of {s.persona}: mode [bold cyan]{s.mode.value}[/], revision {s.revision}",
        highlight=False,
    )
    last = "never" if s.last_interaction is None else f"{ago(s.last_interaction)} ago"
    console.print(
        f"session {s.session_id[:12]}: {s.interactions} interactions, {s.tokens} tokens, last {last}",
        markup=False,
        soft_wrap=True,
    )
    console.print(eigen_table(s))
    ttl_text = "not cached" if ttl is None else f"cached for {ttl:,.0f} s more"
    console.print(
        f"from {recovery.source.value} in {recovery.elapsed_ms:.2f} ms ({ttl_text});"
        f" spark: {_spark_name(settings)}; anchor: {settings.describe_anchor()}",
        markup=False,
        soft_wrap=True,
    )


@app.command()
def recall(
    ctx: typer.Context,
    soul: SoulOpt = None,
    cold: Annotated[bool, typer.Option("--cold", help="Skip the cache: recover from the snapshot.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Recover the soul's session and say where it came from (cache, snapshot or new) and how fast."""
    settings = state(ctx).settings()

    async def go() -> dict[str, Any]:
        start = time.perf_counter()
        service = await open_service(settings)
        connected = (time.perf_counter() - start) * 1000
        try:
            recovery = await service.recover(soul or settings.persona, use_cache=not cold)
        finally:
            await service.close()
        return {**recovery.to_dict(), "connect_ms": round(connected, 3)}

    result = run(go)
    if as_json:
        print_json(result)
        return
    s = result["state"]
    console.print(
        f"recovered soul {s['soul_id']} from {result['source']} in {result['elapsed_ms']:.2f} ms"
        f" (connect {result['connect_ms']:.1f} ms): mode {s['mode']}, revision {s['revision']},"
        f" {s['interactions']} interactions",
        markup=False,
        soft_wrap=True,
    )


@app.command()
def mode(
    ctx: typer.Context,
    new_mode: Annotated[
        str | None,
        typer.Argument(metavar="[MODE]", help="REFLECT, ADVISE, CHALLENGE or EXPLORE; omit to show."),
    ] = None,
    soul: SoulOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Show the dialogue mode, or change it (other instances are told at once)."""

    async def work(session: SoulSession) -> tuple[SoulState, SoulState]:
        before = session.state
        if new_mode is None:
            return before, before
        return before, await session.service.set_mode(before.soul_id, new_mode)

    before, after = with_soul(ctx, soul, work)
    if as_json:
        print_json(
            {
                "soul_id": after.soul_id,
                "mode": after.mode.value,
                "previous": before.mode.value,
                "revision": after.revision,
            }
        )
        return
    if new_mode is None or before.mode is after.mode:
        console.print(f"soul {after.soul_id}: {after.mode.value}", markup=False, soft_wrap=True)
    else:
        console.print(f"soul {after.soul_id}: {before.mode.value} → {after.mode.value}", markup=False, soft_wrap=True)


def parse_eigen(assignment: str) -> tuple[str, float | None, float | None]:
    """`joy=0.8`, `joy=0.8:0.9` (value and confidence) or `joy=:0.9` (confidence only)."""
    name, sep, rest = assignment.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ValidationError(f"an eigenvector is written axis=value[:confidence] (got {assignment!r:.40})")
    value_text, _, confidence_text = rest.partition(":")
    return name, _number(name, "value", value_text), _number(name, "confidence", confidence_text)


def _number(axis: str, what: str, text: str) -> float | None:
    if not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        raise ValidationError(f"eigenvector {axis!r} {what} must be a number (got {text!r:.20})") from None


@app.command()
def eigen(
    ctx: typer.Context,
    assignments: Annotated[
        list[str] | None,
        typer.Argument(metavar="[AXIS=VALUE[:CONFIDENCE]]...", help="Axes to move; omit to show."),
    ] = None,
    soul: SoulOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Show the personality eigenvectors, or move some (all changes are checked before any is saved)."""
    changes = [parse_eigen(a) for a in assignments or []]
    for _, value, confidence in changes:
        if value is None and confidence is None:
            raise ValidationError("give a value, a confidence or both (axis=value[:confidence])")

    def apply(s: SoulState) -> SoulState:
        for name, value, confidence in changes:
            s = s.with_eigenvector(name, value, confidence)
        return s

    async def work(session: SoulSession) -> SoulState:
        current = session.state
        if not changes:
            return current
        apply(current)  # every change valid before anything is written
        return (await session.service.update(current.soul_id, apply))[1]

    result = with_soul(ctx, soul, work)
    if as_json:
        print_json({"soul_id": result.soul_id, "revision": result.revision, **result.to_dict()["eigenvectors"]})
        return
    console.print(eigen_table(result))


def eigen_table(s: SoulState) -> Table:
    table = Table(title=f"eigenvectors of {s.soul_id}", title_justify="left")
    for column in ("axis", "from", "value", "to", "confidence"):
        table.add_column(column, no_wrap=True)
    for name, vector in s.eigenvectors.items():
        axis = AXES.get(name)
        table.add_row(
            name,
            axis.low if axis else "",
            confidence_bar(vector.value),
            axis.high if axis else "",
            f"{vector.confidence:.2f}",
        )
    return table


@app.command()
def watch(
    ctx: typer.Context,
    soul: SoulOpt = None,
    count: Annotated[int | None, typer.Option("--count", "-n", help="Stop after this many changes.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Stream the mode changes other K-gent instances make to this soul, until Ctrl-C (needs Redis)."""
    settings = state(ctx).settings()
    if not settings.redis_url:
        raise ConfigError(PUBSUB_NEEDS_REDIS)

    async def go() -> int:
        async with await open_soul(settings, soul, strict_spark=True) as session:
            return await _stream(session.service, session.state, count, as_json)

    seen = run(go)
    err_console.print(f"kgents: watched {seen} mode change(s)", markup=False, soft_wrap=True)


async def _stream(service: SoulService, current: SoulState, count: int | None, as_json: bool) -> int:
    err_console.print(
        f"kgents: watching soul {current.soul_id} (now {current.mode.value}); Ctrl-C to stop", markup=False
    )
    seen = 0
    changes = service.watch(current.soul_id)
    try:
        async for change in changes:
            seen += 1
            _print_change(change, as_json)
            if count is not None and seen >= count:
                break
    except asyncio.CancelledError:  # Ctrl-C: the normal way to stop watching
        pass
    finally:
        await changes.aclose()  # type: ignore[attr-defined]
    return seen


def _print_change(change: ModeChange, as_json: bool) -> None:
    latency_ms = max(0.0, (time.time_ns() - change.sent_ns) / 1e6)
    if as_json:
        sys.stdout.write(json.dumps({**change.to_dict(), "latency_ms": round(latency_ms, 3)}) + "\n")
        sys.stdout.flush()
        return
    when = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
    previous = change.previous.value if change.previous else "?"
    console.print(
        f"{when} soul {change.soul_id}: {previous} → {change.mode.value} (revision {change.revision},"
        f" instance {change.instance_id}, {latency_ms:.2f} ms)",
        markup=False,
        soft_wrap=True,
    )


@app.command()
def stats(ctx: typer.Context, soul: SoulOpt = None, as_json: JsonFlag = False) -> None:
    """Reflex metrics of the Spark: memory, commands/s, connected instances, this call's cache latency."""
    settings = state(ctx).settings()

    async def work(session: SoulSession) -> dict[str, Any]:
        return {**(await session.service.metrics()).to_dict(), "spark": _spark_name(settings)}

    result = with_soul(ctx, soul, work)
    if as_json:
        print_json(result)
    else:
        for key, value in result.items():
            console.print(f"{key:>20}  {format_value(value)}", markup=False, soft_wrap=True)
    raise typer.Exit(int(exit_code_for_level(str(result["level"]))))

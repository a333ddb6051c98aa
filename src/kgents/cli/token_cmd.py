"""`kgents token …`: persona tokens for `kgents serve` (one persona's memory, read-write or read-only).

They live in the anchor (only their SHA-256), so every server of the anchor honours them at once, and a revoked one
stops working on the next request. Only the anchor is opened: these commands work beside a running server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from kgents.cli.context import console, err_console, persona_flag, print_json, run, state
from kgents.config import Settings

if TYPE_CHECKING:
    from kgents.server.tokens import Tokens

T = TypeVar("T")

app = typer.Typer(
    help="Persona tokens for `kgents serve`: each opens one persona's memory over HTTP and MCP.", no_args_is_help=True
)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON.")]


async def _with_tokens(settings: Settings, work: Callable[[Tokens], Awaitable[T]]) -> T:
    from kgents.garden.store import open_store
    from kgents.server.tokens import Tokens, tokens_on

    store = await open_store(settings)
    try:
        return await work(Tokens(tokens_on(store.anchor)))
    finally:
        await store.close()


def _persona(ctx: typer.Context, persona: str | None) -> str:
    named = persona or state(ctx).overrides.get("persona")
    if not named:
        raise typer.BadParameter("name the persona the token opens with --persona", param_hint="--persona")
    return str(named)


@app.command()
def create(
    ctx: typer.Context,
    persona: Annotated[
        str | None, typer.Option("--persona", "-p", help="The persona it opens.", callback=persona_flag)
    ] = None,
    read_only: Annotated[bool, typer.Option("--read-only", help="Reads only: every write is refused (403).")] = False,
    label: Annotated[str | None, typer.Option("--label", help="A note for `token list` (who holds it).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Make a token of one persona and print it once (stdout); only its hash is kept."""
    named = _persona(ctx, persona)
    settings = state(ctx).settings()
    record, token = run(lambda: _with_tokens(settings, lambda t: t.create(named, read_only=read_only, label=label)))
    if as_json:
        print_json({**record.to_dict(), "token": token})
        return
    access = "read-only" if record.read_only else "read-write"
    err_console.print(
        f"token {record.id}: {access}, persona {record.persona}; shown this once, keep it secret"
        f" (`kgents token revoke {record.id}` ends it)",
        markup=False,
        soft_wrap=True,
    )
    console.print(token, markup=False, soft_wrap=True)


@app.command("list")
def list_tokens(
    ctx: typer.Context,
    persona: Annotated[
        str | None, typer.Option("--persona", "-p", help="Only this persona's.", callback=persona_flag)
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Every persona token (never the token itself): id, persona, access, label, when made and revoked."""
    settings = state(ctx).settings()
    records = run(lambda: _with_tokens(settings, lambda t: t.list(persona)))
    if as_json:
        print_json({"tokens": [r.to_dict() for r in records]})
        return
    if not records:
        console.print("no persona tokens", markup=False)
        return
    for r in records:
        access = "read-only" if r.read_only else "read-write"
        state_ = "active" if r.active else f"revoked {r.revoked_at:%Y-%m-%d %H:%M}"
        note = f"  {r.label}" if r.label else ""
        console.print(
            f"{r.id}  {r.persona}  {access}  made {r.created_at:%Y-%m-%d %H:%M}  {state_}{note}",
            markup=False,
            soft_wrap=True,
        )


@app.command()
def revoke(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(help="The token's id as `token list` shows it (or 4+ of its first).")],
    as_json: JsonFlag = False,
) -> None:
    """End a persona token: every server refuses it from the next request on."""
    settings = state(ctx).settings()
    record = run(lambda: _with_tokens(settings, lambda t: t.revoke(token_id)))
    if as_json:
        print_json(record.to_dict())
        return
    console.print(f"revoked token {record.id} of persona {record.persona}", markup=False, soft_wrap=True)

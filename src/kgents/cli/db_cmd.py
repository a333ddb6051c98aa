"""`kgents db …`: the anchor database's schema and contents at a glance."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from kgents.cli.context import console, print_json, run, state
from kgents.config import Settings

app = typer.Typer(help="The anchor database: migrate it, see what it holds.", no_args_is_help=True)


async def _migrate(settings: Settings) -> tuple[list[str], int]:
    if settings.postgres_url:
        from kgents.anchor import postgres as pg

        pool = await pg.create_pool(settings.postgres_url, settings.postgres_schema, max_size=1)
        try:
            return await pg.migrate(pool, settings.postgres_schema), await pg.schema_version(pool)
        finally:
            await pool.close()
    from kgents.anchor.sqlite import SqliteAnchor

    anchor = await SqliteAnchor.open(settings.sqlite_path, migrate=False)
    try:
        return await anchor.migrate(), await anchor.schema_version()
    finally:
        await anchor.close()


@app.command()
def migrate(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Apply any missing schema migrations (safe to run again)."""
    settings = state(ctx).settings()
    applied, version = run(lambda: _migrate(settings))
    if as_json:
        print_json({"anchor": settings.describe_anchor(), "applied": applied, "schema_version": version})
    elif applied:
        console.print(
            f"applied {', '.join(applied)} on {settings.describe_anchor()}; schema version {version}", soft_wrap=True
        )
    else:
        console.print(f"{settings.describe_anchor()} is up to date (schema version {version})", soft_wrap=True)


@app.command()
def info(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Where the anchor is, its schema version, personas and the outbox backlog."""
    settings = state(ctx).settings()

    async def work() -> dict[str, Any]:
        from kgents.garden import open_store

        store = await open_store(settings)
        try:
            return {
                "anchor": settings.describe_anchor(),
                "backend": store.backend,
                "schema_version": await store.schema_version(),
                "personas": await store.personas(),
                "outbox_pending": await store.outbox_depth(),
            }
        finally:
            await store.close()

    data = run(work)
    if as_json:
        print_json(data)
        return
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("anchor", data["anchor"])
    table.add_row("schema version", str(data["schema_version"]))
    table.add_row("outbox pending", f"{data['outbox_pending']:,}")
    personas = data["personas"]
    table.add_row("personas", ", ".join(f"{p} ({n:,})" for p, n in personas.items()) or "none yet")
    console.print(table)

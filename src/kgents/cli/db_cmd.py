"""`kgents db …`: the anchor database's schema and contents at a glance."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from kgents.cli.context import console, print_json, run, state
from kgents.config import Settings
from kgents.home import home_exposure

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

    db = await SqliteAnchor.open(settings.sqlite_path, migrate=False)
    try:
        return await db.migrate(), await db.schema_version()
    finally:
        await db.close()


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
def info(
    ctx: typer.Context,
    all_personas: Annotated[
        bool, typer.Option("--all-personas", help="Operator view: list every persona and its entry count.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Where the anchor is, its schema version, this persona's entries and the outbox backlog (of every persona:
    the relay's queue is one for the whole anchor). Other personas are listed only with --all-personas."""
    settings = state(ctx).settings()
    data = run(lambda: anchor_info(settings, all_personas=all_personas))
    if as_json:
        print_json(data)
        return
    console.print(info_table(data, all_personas=all_personas))


async def anchor_info(settings: Settings, *, all_personas: bool) -> dict[str, Any]:
    """What `db info` shows, read from the anchor (and the index folder's size on the embedded default)."""
    from kgents.disk import folder_bytes
    from kgents.garden.store import open_store
    from kgents.health.probes import anchor_bytes

    store = await open_store(settings)
    try:
        personas = await store.personas()
        everyone = sum(personas.values())
        size = await anchor_bytes(store.anchor)
        index = None if settings.qdrant_url else folder_bytes(settings.home / "index")
        data: dict[str, Any] = {
            "home": str(settings.home),
            "anchor": settings.describe_anchor(),
            "backend": store.backend,
            "schema_version": await store.schema_version(),
            "persona": settings.persona,
            "entries": personas.get(settings.persona, 0),
            "outbox_pending": await store.outbox_depth(),
            "home_warning": home_exposure(settings.home),
            "anchor_bytes": size,
            "anchor_bytes_per_entry": round(size / everyone) if everyone else None,
            "index_bytes": index,
            "index_bytes_per_entry": round(index / everyone) if everyone and index is not None else None,
        }
        if all_personas:
            data["personas"] = personas
        return data
    finally:
        await store.close()


def info_table(data: dict[str, Any], *, all_personas: bool) -> Table:
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("home", data["home"])
    table.add_row("anchor", data["anchor"])
    table.add_row("schema version", str(data["schema_version"]))
    count = data["entries"]
    table.add_row("persona", f"{data['persona']} ({count:,} {'entry' if count == 1 else 'entries'})")
    table.add_row("outbox pending", f"{data['outbox_pending']:,} (all personas)")
    table.add_row("bytes per entry", bytes_line(data))
    if data["home_warning"]:
        table.add_row("warning", data["home_warning"])
    if all_personas:
        personas = data["personas"]
        listed = ", ".join(f"{p} ({n:,})" for p, n in personas.items()) or "none yet"
        table.add_row("all personas", f"{listed} (operator view)")
    return table


def bytes_line(data: dict[str, Any]) -> str:
    """`anchor 1,187 · index 5,896 (all personas)` (the embedded index's folder; a Qdrant server's is not here)."""
    anchor, index = data["anchor_bytes_per_entry"], data["index_bytes_per_entry"]
    if anchor is None:
        return f"no entries yet (anchor {data['anchor_bytes']:,} bytes)"
    shown = f"anchor {anchor:,}" + ("" if index is None else f" · index {index:,}")
    return f"{shown} (all personas)"

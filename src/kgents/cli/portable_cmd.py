"""`kgents export`, `kgents import` and `kgents forget`: a persona's memory out, back in, and gone."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kgents.cli.context import confirmed, console, persona_flag, print_json, read_input, run, state
from kgents.cli.progress import LongWork, counted
from kgents.config import Settings
from kgents.garden.store import open_store
from kgents.memory.forget import forget_everywhere
from kgents.memory.portable import ImportReport, bundle_lines, parse_bundle, read_bundle, retarget, write_bundle
from kgents.soul.snapshot import snapshots_on

if TYPE_CHECKING:
    from kgents.memory.remote import RemoteMemory
    from kgents.synapse.runtime import Synapse

PersonaOpt = Annotated[
    str | None,
    typer.Option("--persona", "-p", help="Whose memory (overrides the global flag).", callback=persona_flag),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a line.")]


def _settings(ctx: typer.Context, persona: str | None) -> tuple[Settings, str | None]:
    """The settings (with this command's --persona), and the persona named by a flag, if any."""
    cli = state(ctx)
    named = persona or cli.overrides.get("persona")
    settings = cli.settings()
    return (settings.with_persona(named) if named else settings), named


def export(ctx: typer.Context, persona: PersonaOpt = None) -> None:
    """Write every entry and soul snapshot of a persona to stdout as JSON lines (`> memory.jsonl`)."""
    settings, _ = _settings(ctx, persona)

    async def work() -> list[str]:
        store = await open_store(settings)
        try:
            return bundle_lines(await read_bundle(store, snapshots_on(store.anchor), settings.persona))
        finally:
            await store.close()

    out = sys.stdout
    for line in run(work):
        out.write(line + "\n")
    out.flush()


def _read_lines(path: Path) -> list[str]:
    """The export's lines, split at newlines only (U+2028 and the like are text inside a JSON string)."""
    lines = read_input(path).split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def import_(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="An export of `kgents export` ('-': stdin).")],
    persona: Annotated[
        str | None,
        typer.Option("--persona", "-p", help="Import as this persona (default: the file's).", callback=persona_flag),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Read an export back: every line is checked first (a bad one is named, nothing written); entries and souls
    already there are left as they are; new ones keep their ids, versions and dates (as another persona, with
    --persona: ids derived from theirs and the persona, so a copy lives beside the original)."""
    lines = _read_lines(path)
    settings, named = _settings(ctx, persona)

    async def work() -> ImportReport:
        async with LongWork("import: checking", total=len(lines), unit="lines") as shown:
            bundle = await asyncio.to_thread(lambda: parse_bundle(counted(lines, shown)))
        bundle = retarget(bundle, named) if named else bundle
        store = await open_store(settings.with_persona(bundle.persona))
        try:
            async with LongWork(f"import: writing {len(bundle.entries):,} entries in one transaction"):
                return await write_bundle(store, snapshots_on(store.anchor), bundle)
        finally:
            await store.close()

    report = run(work)
    if as_json:
        print_json(report.to_dict())
        return
    console.print(
        f"imported into {report.persona}: {report.entries_added} entries added, {report.entries_present} already"
        f" there; {report.souls_added} souls added, {report.souls_present} already there"
    )


def forget(
    ctx: typer.Context,
    persona: PersonaOpt = None,
    purge_history: Annotated[
        bool, typer.Option("--purge-history", help="Also drop the persona's audit rows (its change history).")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: this cannot be undone (export first).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Remove a persona everywhere it lives: anchor rows, outbox, index points, soul cache and snapshot; one audit
    tombstone says when and how many entries went."""
    settings, named = _settings(ctx, persona)
    if not named:
        raise typer.BadParameter("name the persona to forget with --persona", param_hint="--persona")
    confirmed(yes, f"forgetting {named} cannot be undone (export it first)")

    from kgents.cli.index_access import local_or_remote

    async def local(synapse: Synapse) -> dict[str, Any]:
        return (await forget_everywhere(synapse, named, purge_history=purge_history)).to_dict()

    async def remote(memory: RemoteMemory) -> dict[str, Any]:  # the home's server does it
        return await memory.forget_persona(purge_history=purge_history)

    report = run(lambda: local_or_remote(settings, named, local, remote))
    if as_json:
        print_json(report)
        return
    history = "; its history too" if report["purged_history"] else "; its history stays in the audit trail"
    console.print(
        f"forgot {report['persona']}: {report['entries']} entries, {report['points']} index points,"
        f" {report['cache_keys']} cached souls{history}"
    )

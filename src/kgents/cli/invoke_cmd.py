"""`kgents invoke PATH [ARGS]`: resolve an AGENTESE path and print what it answers."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from kgents.agentese.handlers import REGISTRY
from kgents.agentese.invoke import invoke, to_jsonable
from kgents.agentese.resolver import AgentContext, Args
from kgents.cli.context import console, print_json, run, state
from kgents.cli.exit_codes import exit_code_for_level
from kgents.cli.health_render import render_part, render_triad
from kgents.cli.index_access import tell
from kgents.cli.render import format_value
from kgents.errors import ValidationError
from kgents.health.model import PartHealth, TriadHealth


def invoke_path(
    ctx: typer.Context,
    path: Annotated[
        str | None, typer.Argument(help="<context>.<holon>.<aspect>, e.g. self.vitals.triad.health")
    ] = None,
    args: Annotated[list[str] | None, typer.Argument(help="Words (the text) and key=value options.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    list_paths: Annotated[bool, typer.Option("--list", help="List every path.")] = False,
) -> None:
    """Resolve an AGENTESE path (self.vitals.triad.*, world.database.*, time.drift.*) and print its answer; an
    unknown path lists the nearest ones (exit 66). Health paths exit with the level's code."""
    if list_paths or path is None:
        if path is None and not list_paths:
            raise ValidationError("invoke needs a path (`kgents invoke --list` lists them)")
        for item in REGISTRY.paths():
            console.print(f"{item.path:<34} {item.summary}", markup=False, soft_wrap=True)
        return
    settings = state(ctx).settings()
    agent = AgentContext(settings, progress=tell)
    result = run(lambda: invoke(agent, path, Args.parse(args or [])))
    if as_json:
        print_json(to_jsonable(result))
    elif isinstance(result, TriadHealth):
        console.print(render_triad(result), soft_wrap=True)
    elif isinstance(result, PartHealth):
        console.print(render_part(result), soft_wrap=True)
    else:
        _print_plain(to_jsonable(result))
    level = result.level if isinstance(result, TriadHealth | PartHealth) else None
    if level is not None:
        raise typer.Exit(int(exit_code_for_level(level)))


def _print_plain(data: Any, indent: str = "") -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, dict | list) and value:
                console.print(f"{indent}{key}:", markup=False)
                _print_plain(value, indent + "  ")
            else:
                console.print(f"{indent}{key}  {format_value(value)}", markup=False, soft_wrap=True)
    elif isinstance(data, list):
        for item in data:
            if isinstance(item, dict):
                console.print(
                    f"{indent}- " + ", ".join(f"{k}={format_value(v)}" for k, v in item.items()),
                    markup=False,
                    soft_wrap=True,
                )
            else:
                console.print(f"{indent}- {format_value(item)}", markup=False, soft_wrap=True)
    else:
        console.print(f"{indent}{format_value(data)}", markup=False, soft_wrap=True)

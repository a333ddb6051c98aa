"""The `kgents` entry point: global flags, the sub-command groups, and error handling for all of them."""

from __future__ import annotations

import os
import sys
from typing import Annotated, NoReturn

import typer
from typer._click.exceptions import NoArgsIsHelpError

from kgents import __version__
from kgents.cli import (
    chat_cmd,
    db_cmd,
    demo_cmd,
    dream_cmd,
    garden_cmd,
    ghost_cmd,
    graph_cmd,
    invoke_cmd,
    logs,
    mcp_cmd,
    metrics_cmd,
    portable_cmd,
    search_cmd,
    serve_cmd,
    soul_cmd,
    status_cmd,
    synapse_alive,
    synapse_cmd,
    token_cmd,
    workbench_cmd,
)
from kgents.cli.context import CliState, err_console, persona_flag
from kgents.cli.exit_codes import ExitCode, exit_code_for
from kgents.errors import KgentsError

app = typer.Typer(
    name="kgents",
    help="A durable, searchable, observable memory for the K-gent persona agent.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
garden_cmd.app.command("search")(search_cmd.search)
synapse_cmd.app.command("alive")(synapse_alive.alive)
synapse_cmd.app.command("build")(graph_cmd.build)
app.add_typer(garden_cmd.app, name="garden")
app.add_typer(synapse_cmd.app, name="synapse")
app.add_typer(db_cmd.app, name="db")
app.add_typer(soul_cmd.app, name="soul")
app.add_typer(metrics_cmd.app, name="metrics")
app.add_typer(token_cmd.app, name="token")
app.command("demo")(demo_cmd.demo)
app.command("chat")(chat_cmd.chat)
app.command("dream")(dream_cmd.dream)
app.command("export")(portable_cmd.export)
app.command("forget")(portable_cmd.forget)
app.command("ghost")(ghost_cmd.ghost)
app.command("import")(portable_cmd.import_)
app.command("invoke")(invoke_cmd.invoke_path)
app.command("mcp")(mcp_cmd.mcp)
app.command("serve")(serve_cmd.serve)
app.command("status")(status_cmd.status)
app.command("workbench")(workbench_cmd.workbench)


def _print_version(value: bool) -> None:
    """`--version` is eager: it answers before click looks for a command."""
    if value:
        typer.echo(f"kgents {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    home: Annotated[
        str | None, typer.Option("--home", help="Embedded data folder (KGENTS_HOME, default ~/.kgents).")
    ] = None,
    persona: Annotated[
        str | None,
        typer.Option(
            "--persona", "-p", help="Whose memory (KGENTS_PERSONA, default 'default').", callback=persona_flag
        ),
    ] = None,
    postgres_url: Annotated[
        str | None, typer.Option("--postgres-url", help="Use PostgreSQL as the anchor (KGENTS_POSTGRES_URL).")
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", is_eager=True, callback=_print_version)
    ] = False,
) -> None:
    ctx.obj = CliState({"home": home, "persona": persona, "postgres_url": postgres_url})


def main(argv: list[str] | None = None) -> None:
    """Console-script entry and the one place errors are reported: a plain line on stderr and an exit code."""
    command = typer.main.get_command(app)
    handler = logs.install()
    try:
        result = command.main(args=argv, prog_name="kgents", standalone_mode=False)
    except typer.Abort:
        _exit_with("interrupted", ExitCode.INTERRUPTED)
    except NoArgsIsHelpError as exc:  # a bare group: its help is the answer (rich printed it already)
        if exc.format_message():
            typer.echo(exc.format_message())
        sys.exit(ExitCode.OK)
    except typer.exceptions.TyperException as exc:  # click's usage errors, as typer vendors them
        _exit_with(exc.format_message().replace("\n", " "), exit_code_for(exc))
    except (KgentsError, KeyboardInterrupt) as exc:
        _exit_with(str(exc) or "interrupted", exit_code_for(exc))
    except Exception as exc:
        if os.environ.get("KGENTS_DEBUG"):
            raise
        _exit_with(
            f"internal error: {type(exc).__name__}: {exc} (KGENTS_DEBUG=1 shows the traceback)", ExitCode.INTERNAL
        )
    finally:
        logs.uninstall(handler)
    sys.exit(result if isinstance(result, int) else ExitCode.OK)


def _exit_with(message: str, code: ExitCode) -> NoReturn:
    err_console.print(f"kgents: {message}", markup=False, soft_wrap=True)
    sys.exit(code)

"""The core never imports the UI: garden, synapse, soul, health and agentese load without rich or textual (as
Harlequin checks)."""

from __future__ import annotations

import subprocess
import sys

CORE = (
    "kgents.config",
    "kgents.anchor.sqlite",
    "kgents.anchor.postgres",
    "kgents.garden",
    "kgents.garden.sqlite_store",
    "kgents.garden.postgres_store",
    "kgents.synapse",
    "kgents.soul",
    "kgents.resonance",
    "kgents.health",
    "kgents.health.ghost",
    "kgents.health.prometheus",
    "kgents.agentese",
    "kgents.kgent",
    "kgents.kgent.demo",
    "kgents.hypnagogia",
)


def test_core_modules_import_without_ui_libraries() -> None:
    code = (
        "import importlib, importlib.util, sys\n"
        f"for name in {CORE!r}:\n"
        "    if importlib.util.find_spec(name) is not None:\n"
        "        importlib.import_module(name)\n"
        "print(','.join(m for m in ('rich', 'textual', 'typer', 'kgents.workbench') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_a_client_of_the_server_does_not_load_the_server_stack_or_httpx() -> None:
    """A CLI command or a Python face that goes through `kgents serve` finds it (reading the server file, asking
    /livez) and talks to it without starlette, uvicorn or httpx: importing httpx alone cost each command ~0.1 s."""
    code = (
        "import sys, tempfile, pathlib\n"
        "from kgents.config import Settings\n"
        "from kgents.memory.remote import RemoteMemory\n"
        "from kgents.home.discovery import ServerInfo, answers_livez, find_server\n"
        "settings = Settings(home=pathlib.Path(tempfile.mkdtemp()))\n"
        "assert find_server(settings) is None and not answers_livez('http://127.0.0.1:9')\n"
        "RemoteMemory(ServerInfo('http://127.0.0.1:9', 't' * 32), 'kent')\n"
        "print(','.join(m for m in ('httpx', 'starlette', 'uvicorn', 'mcp') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""

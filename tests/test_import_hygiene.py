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

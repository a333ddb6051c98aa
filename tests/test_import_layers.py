"""Every import between packages points down the layers of CONTRIBUTING.md (issue 19). Read from the source, every
import counted (module level, in functions, under TYPE_CHECKING). The arrows still pointing up are listed in
`KNOWN_UP`: a new one fails naming its edge and files, and a listed one that is gone fails until it is struck off."""

from __future__ import annotations

import ast
from pathlib import Path

import kgents

ROOT = Path(kgents.__file__).parent
LAYERS = (
    {"config", "errors", "home", "clock", "stats", "disk", "loop_thread", "axes", "breaker"},
    {"anchor"},
    {"garden", "soul"},
    {"resonance"},
    {"synapse"},
    {"health"},
    {"memory"},
    {"server", "kgent", "hypnagogia"},
    {"agentese", "workbench", "cli"},
)
LAYER = {name: level for level, names in enumerate(LAYERS) for name in names}
KNOWN_UP: dict[tuple[str, str], str] = {}
"""Arrows still pointing up, each with why, until moved (none now)."""


def _imported(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def edges() -> dict[tuple[str, str], set[str]]:
    """(from package, to package) → the files that import so."""
    out: dict[tuple[str, str], set[str]] = {}
    for path in ROOT.rglob("*.py"):
        source = path.relative_to(ROOT).parts[0].removesuffix(".py")
        if source == "__init__":
            continue
        for module in _imported(ast.parse(path.read_text("utf-8"))):
            parts = module.split(".")
            if parts[0] == "kgents" and len(parts) > 1 and parts[1] != source:
                out.setdefault((source, parts[1]), set()).add(str(path.relative_to(ROOT)))
    return out


def test_every_package_has_a_layer() -> None:
    packages = {p.name.removesuffix(".py") for p in ROOT.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    assert packages - {"__init__"} <= set(LAYER), sorted(packages - {"__init__"} - set(LAYER))


Edges = dict[tuple[str, str], set[str]]


def upward(found: Edges) -> Edges:
    """The edges pointing up the layers, and both edges of a cycle within one layer."""
    return {
        edge: files
        for edge, files in found.items()
        if LAYER[edge[1]] > LAYER[edge[0]] or (LAYER[edge[1]] == LAYER[edge[0]] and edge[::-1] in found)
    }


def test_the_check_names_an_upward_edge_and_a_cycle() -> None:
    found: Edges = {
        ("garden", "synapse"): {"garden/x.py"},
        ("synapse", "garden"): {"synapse/y.py"},
        ("kgent", "hypnagogia"): {"kgent/a.py"},
        ("hypnagogia", "kgent"): {"hypnagogia/b.py"},
        ("memory", "garden"): {"memory/c.py"},
    }
    assert set(upward(found)) == {("garden", "synapse"), ("kgent", "hypnagogia"), ("hypnagogia", "kgent")}


def test_imports_point_down_the_layers() -> None:
    found = edges()
    up = upward(found)
    new = {f"{a} -> {b}": sorted(files) for (a, b), files in up.items() if (a, b) not in KNOWN_UP}
    assert not new, f"imports pointing up the layers (or a cycle within one): {new}"
    gone = sorted(f"{a} -> {b}" for a, b in KNOWN_UP if (a, b) not in up)
    assert not gone, f"no longer imported: strike them off KNOWN_UP: {gone}"

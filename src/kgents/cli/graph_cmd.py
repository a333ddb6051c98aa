"""`kgents synapse build`: the index's HNSW graph, built now or awaited; and the graph's line of `synapse status`.

The embedded index builds its graph by itself once enough points are outside it (in a child process, swapped in
when done); this command is for an operator who wants it now, or wants to wait until it is done (a bench, a
deployment step). Through the home's server when one runs (it holds the index), else on the index opened here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from kgents.cli.context import console, print_json

if TYPE_CHECKING:
    from kgents.synapse.runtime import Stack


def graph_line(graph: dict[str, Any] | None) -> str | None:
    """One line of `synapse status` for the graph (None: no graph this process builds, e.g. a Qdrant server)."""
    if graph is None:
        return None
    points, outside = graph["points"], graph["outside"]
    auto = graph.get("builds_after")
    by_itself = "" if auto is None else f"; a build starts by itself at {auto:,} outside"
    if graph["state"] == "building":
        progress = "" if graph.get("progress") is None else f", ~{100 * graph['progress']:.0f} %"
        return (
            f"graph      building ({graph['phase']}{progress}, {graph['elapsed_s']:.1f} s): {points:,} points,"
            f" {graph['in_graph']:,} in the graph so far"
        )
    if graph["state"] == "built":
        last = "" if graph.get("last_build_s") is None else f"; last build {graph['last_build_s']:.1f} s"
        if graph.get("last_pause_s") is not None:
            last += f" (writes waited {graph['last_pause_s']:.1f} s)"
        return (
            f"graph      built: {graph['in_graph']:,} of {points:,} points in the graph, {outside:,} searched exactly"
            f" beside it{last}{by_itself}"
        )
    return f"graph      plain: {points:,} point{'' if points == 1 else 's'}, all searched exactly{by_itself}"


def build(
    ctx: typer.Context,
    wait_only: Annotated[
        bool, typer.Option("--wait-only", help="Only wait for a build that runs; start none.")
    ] = False,
    wait: Annotated[
        float | None,
        typer.Option("--wait", min=0.0, help="Give up waiting after this many seconds (the build goes on)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Build the index's HNSW graph now (searches and writes go on meanwhile) and wait until it is swapped in;
    with --wait-only, wait for the build that runs (the index starts one by itself past a threshold)."""
    from kgents.cli.synapse_cmd import with_stack

    async def local(s: Stack) -> dict[str, Any] | None:
        graph = await s.build_graph(now=not wait_only, timeout_s=wait)
        return None if graph is None else graph.to_dict()

    graph = with_stack(ctx, local, remote=lambda m: m.build_index(now=not wait_only, wait_s=wait), what="build")
    if as_json:
        print_json({"graph": graph})
        return
    line = graph_line(graph) or "graph      the index server builds its own graph"
    console.print(line, markup=False, highlight=False, soft_wrap=True)

"""`kgents demo`: a scripted walk through the memory of a K-gent, on whatever anchor the settings name.

It plays persona `demo` so it never touches anyone else's garden, and clears that persona's previous run first.
"""

from __future__ import annotations

import time
from dataclasses import replace

import typer
from rich.rule import Rule

from kgents.cli.context import console, run, state
from kgents.cli.render import entries_table, history_table, short_id
from kgents.garden import GardenQuery, Lifecycle, PersonaGarden, open_store

DEMO_PERSONA = "demo"

SEEDS: tuple[tuple[str, str, float, tuple[str, ...]], ...] = (
    ("I prefer minimal code", "PREFERENCE", 0.6, ("style", "code")),
    ("Delete dead code instead of commenting it out", "BEHAVIOR", 0.5, ("style", "code")),
    ("Tests talk to real databases, not mocks", "VALUE", 0.7, ("testing",)),
    ("Asks for figures before believing a speed-up", "PATTERN", 0.45, ("rigor",)),
    ("Small pure functions make thresholds testable", "INSIGHT", 0.35, ("design",)),
)


def demo(ctx: typer.Context) -> None:
    """Walk through planting, nurturing, growing and auditing a persona's memory."""
    settings = replace(state(ctx).settings(), persona=DEMO_PERSONA)

    async def go() -> None:
        started = time.perf_counter()
        console.print(Rule("kgents demo: the PersonaGarden"))
        console.print(f"anchor: {settings.describe_anchor()}")
        store = await open_store(settings)
        try:
            garden = PersonaGarden(store, DEMO_PERSONA)
            stale = await garden.query(GardenQuery(limit=10_000))
            for entry in stale:
                await garden.delete(entry.id)
            if stale:
                console.print(f"cleared {len(stale)} entries of an earlier demo run")

            console.print(Rule("1. plant what the user said"))
            planted = await garden.plant_many(
                [garden.new_entry(c, t, confidence=conf, tags=tags) for c, t, conf, tags in SEEDS]
            )
            console.print(entries_table(planted, f"planted {len(planted)} seeds"))

            console.print(Rule("2. nurture with evidence: confidence earns growth"))
            minimal = planted[0]
            for evidence in (
                "asked to shrink a 40-line helper",
                "rejected a framework for a 10-line script",
                "praised a diff that only deleted code",
            ):
                minimal = await garden.nurture(minimal.id, evidence=evidence, confidence_delta=0.1)
                console.print(
                    f"  {short_id(minimal.id)} confidence {minimal.confidence:.2f} → {minimal.lifecycle.value}"
                )

            tested = await garden.nurture(planted[2].id, evidence="refused a mocked database in review")
            console.print(f"  {short_id(tested.id)} confidence {tested.confidence:.2f} → {tested.lifecycle.value}")

            console.print(Rule("3. the rules hold"))
            await garden.compost(planted[4].id)
            try:
                await garden.nurture(planted[4].id)
            except Exception as exc:
                console.print(f"  nurturing a COMPOST entry is refused: [italic]{exc}[/]")

            console.print(Rule("4. ask the garden"))
            trees = await garden.find_trees(min_confidence=0.7)
            console.print(entries_table(trees, "mature patterns (TREE, confidence ≥ 0.70)"))
            styled = await garden.query(
                GardenQuery(
                    tags=("style",), lifecycles=(Lifecycle.SEED, Lifecycle.SAPLING, Lifecycle.TREE, Lifecycle.FLOWER)
                )
            )
            console.print(entries_table(styled, "tagged 'style'"))

            console.print(Rule("5. every change is audited, and queued for the vector index"))
            console.print(history_table(await garden.history(minimal.id), f"history of {short_id(minimal.id)}"))
            console.print(f"outbox events waiting for the Synapse relay: {await store.outbox_depth():,}")
        finally:
            await store.close()
        console.print(Rule(f"done in {time.perf_counter() - started:.2f} s"))

    run(go)

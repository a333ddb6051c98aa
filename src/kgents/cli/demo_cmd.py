"""`kgents demo`: the whole memory of a K-gent, end to end, on whatever the settings name (embedded by default).

A session starts and recovers its soul; the user states preferences, which land in the anchor (with outbox and
audit); the Synapse relay carries them into the vector index and the coherency with the truth is *measured*; a
question is answered by meaning, not by words; the session ends, and a new one remembers where it was.
It plays persona `demo`, so it never touches anyone else's memory, and clears that persona's earlier run first.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING

import typer
from rich.rule import Rule

from kgents.cli.context import console, run, state
from kgents.cli.render import entries_table, history_table, short_id
from kgents.config import Settings
from kgents.errors import LifecycleError
from kgents.garden import GardenQuery, GardenStore, PersonaGarden, open_store

if TYPE_CHECKING:
    from kgents.synapse.runtime import Synapse

DEMO_PERSONA = "demo"

SEEDS: tuple[tuple[str, str, float, tuple[str, ...]], ...] = (
    ("I prefer minimal code", "PREFERENCE", 0.6, ("style", "code")),
    ("Delete dead code instead of commenting it out", "BEHAVIOR", 0.5, ("style", "code")),
    ("Tests talk to real databases, not mocks", "VALUE", 0.7, ("testing",)),
    ("Asks for figures before believing a speed-up", "PATTERN", 0.45, ("rigor",)),
    ("Pasta tastes best with fresh basil", "PREFERENCE", 0.5, ("food",)),
    ("Small pure functions make thresholds testable", "INSIGHT", 0.35, ("design",)),
)
QUESTIONS = ("simplicity", "how should tests be written?", "what should I eat tonight?")


def step(title: str) -> None:
    console.print(Rule(title, align="left", style="dim"))


async def relay(synapse: Synapse, why: str) -> None:
    started = time.perf_counter()
    applied = (await synapse.catch_up()).completed
    report = await synapse.coherency()
    console.print(
        f"  Synapse relayed {applied} outbox events in {(time.perf_counter() - started) * 1000:.0f} ms ({why});"
        f" coherency_with_truth = [bold]{report.coherency_with_truth:.0%}[/]"
        f" ({report.matched} matched, {report.stale} stale, {report.missing} missing, {report.orphaned} orphaned)"
    )


async def start_session(settings: Settings, label: str) -> None:
    from kgents.soul import open_soul

    async with await open_soul(settings, DEMO_PERSONA) as session:
        soul = session.state
        console.print(
            f"  {label}: soul [bold]{DEMO_PERSONA}[/] recovered from [bold]{session.recovery.source.value}[/]"
            f" in {session.recovery.elapsed_ms:.2f} ms; mode {soul.mode.value},"
            f" {soul.interactions} interactions so far"
        )


async def clear_previous_run(settings: Settings, garden: PersonaGarden) -> None:
    from kgents.soul import open_service

    stale = await garden.query(None, GardenQuery(limit=10_000))
    for entry in stale:
        await garden.delete(entry.id)
    service = await open_service(settings)
    try:
        forgot = await service.forget(DEMO_PERSONA)
    finally:
        await service.close()
    if stale or forgot:
        console.print(f"  (cleared {len(stale)} entries and the soul of an earlier demo run)")


async def scenario(settings: Settings, store: GardenStore) -> None:
    from kgents.soul import open_service
    from kgents.synapse.runtime import open_synapse

    garden = PersonaGarden(store, DEMO_PERSONA)
    await clear_previous_run(settings, garden)
    synapse = await open_synapse(settings, store=store)
    try:
        console.print(f"  associator: {synapse.index.backend} index, embedder {synapse.state.active.embedder}")
        step("1. a session starts")
        await start_session(settings, "session 1")

        step("2. the user states preferences: planted in the anchor (ACID, outbox, audit)")
        planted = await garden.plant_many(
            [garden.new_entry(c, t, confidence=conf, tags=tags) for c, t, conf, tags in SEEDS]
        )
        console.print(entries_table(planted, f"planted {len(planted)} seeds"))

        step("3. evidence nurtures them; confidence earns growth")
        minimal = planted[0]
        for evidence in (
            "asked to shrink a 40-line helper",
            "rejected a framework for a 10-line script",
            "praised a diff that only deleted code",
        ):
            minimal = await garden.nurture(minimal.id, evidence=evidence, confidence_delta=0.1)
            console.print(f"  {short_id(minimal.id)} confidence {minimal.confidence:.2f} → {minimal.lifecycle.value}")
        tested = await garden.nurture(planted[2].id, evidence="refused a mocked database in review")
        console.print(f"  {short_id(tested.id)} confidence {tested.confidence:.2f} → {tested.lifecycle.value}")
        await garden.compost(planted[5].id)
        try:
            await garden.nurture(planted[5].id)
        except LifecycleError as exc:
            console.print(f"  the rules hold: [italic]{exc}[/]")

        step("4. Synapse carries every change into the vector index; coherency is measured, not guessed")
        console.print(f"  outbox events waiting: {await store.outbox_depth()}")
        await relay(synapse, "insert, update and delete events")

        step("5. questions answered by meaning, not by shared words; hits hydrated from the truth")
        searcher = synapse.search()
        for question in QUESTIONS:
            hits = await searcher.find_by_semantic_similarity(DEMO_PERSONA, question, limit=2)
            console.print(f'  [bold]"{question}"[/]')
            for hit in hits:
                console.print(
                    f"    {hit.score:.3f}  {hit.entry.lifecycle.value:<7} {hit.entry.content}", highlight=False
                )

        step("6. a metadata change re-indexes without re-embedding; coherency holds")
        await garden.nurture(planted[3].id, evidence="asked for p95, not just the mean")
        await relay(synapse, "confidence change only")

        step("7. the session works, then ends; a new session remembers")
        service = await open_service(settings)
        try:
            await service.set_mode(DEMO_PERSONA, "ADVISE")
            await service.record_interaction(DEMO_PERSONA, tokens=420)
        finally:
            await service.close()
        console.print("  session 1 switched to ADVISE and recorded an interaction, then ended")
        await start_session(settings, "session 2")

        step("8. every change is audited")
        console.print(history_table(await garden.history(minimal.id), f"history of {short_id(minimal.id)}"))
    finally:
        await synapse.close()


def demo(ctx: typer.Context) -> None:
    """Walk through a K-gent's memory end to end: soul, garden, relay, search, coherency, recovery."""
    settings = replace(state(ctx).settings(), persona=DEMO_PERSONA)

    async def go() -> None:
        started = time.perf_counter()
        console.print(Rule("kgents demo: a K-gent that remembers"))
        console.print(f"  home: {settings.home} (KGENTS_HOME)", soft_wrap=True)
        console.print(f"  anchor: {settings.describe_anchor()}", soft_wrap=True)
        store = await open_store(settings)
        try:
            await scenario(settings, store)
        finally:
            await store.close()
        console.print(Rule(f"done in {time.perf_counter() - started:.2f} s"))

    run(go)

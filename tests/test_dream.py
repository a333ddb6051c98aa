"""The dream merges only entries that say the same thing, and a second dream changes nothing: distinct facts
written from one template never compost, true paraphrases still consolidate (all of them in one dream, however
many), and the CLI's dream sees what `kgents garden plant` wrote before the index caught up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from bench.extraction import best_threshold, judged, pair_scores, pairs

from kgents.config import Settings
from kgents.garden.filters import EntryFilter
from kgents.garden.model import EntryType, Lifecycle
from kgents.hypnagogia import HypnagogicCycle
from kgents.kgent import KGent
from kgents.kgent.learn import Action
from kgents.kgent.sameness import SAME_THRESHOLD, differing_specifics, same_facts
from kgents.memory import AsyncMemory

PARAPHRASES = (
    "I prefer minimal code",
    "I want minimal code",
    "I like minimal code",
    "I really prefer minimal code",
    "I really like minimal code",
    "I really want minimal code",
    "I love minimal code",
    "I always prefer minimal code",
    "I strongly prefer minimal code",
    "I do prefer minimal code",
    "I definitely prefer minimal code",
    "I truly like minimal code",
)
"""Twelve ways of saying one thing: more than recall's default page, so a dream must see past its first 10."""


@pytest.fixture
async def memory(anchor_settings: Settings) -> AsyncIterator[AsyncMemory]:
    async with AsyncMemory(settings=anchor_settings.with_persona("kent")) as opened:
        yield opened


async def _plant(memory: AsyncMemory, *texts: str) -> None:
    for text in texts:
        await memory.remember(text, type=EntryType.PREFERENCE, tags=["kgent"], confidence=0.55, evidence=[text])


async def _state(memory: AsyncMemory) -> dict[str, tuple[int, Lifecycle]]:
    entries = await memory.list(EntryFilter(include_compost=True), limit=1000)
    return {str(e.id): (e.version, e.lifecycle) for e in entries}


def test_specifics_tell_template_facts_apart() -> None:
    assert differing_specifics("meeting with client number 1 is on friday", "meeting with client number 2 is on friday")
    assert differing_specifics("My sister's name is Anna", "My sister's name is Maria") == {"anna", "maria"}
    assert differing_specifics("the standup is on tuesdays", "the standup is on thursdays")
    assert not same_facts("I prefer tabs over spaces", "I prefer spaces over tabs")  # the same words, another order
    assert same_facts("Please never add comments that repeat the code", "Never add comments that just repeat the code")
    assert same_facts("I value readable code", "Readable code matters to me")
    assert not same_facts("I don't like type hints", "I like type hints")  # a negation, whatever the tags say
    assert not same_facts("Why did you say that?", "Do you remember what I like?")  # no content word in common


async def test_the_rule_merges_no_distinct_fact_of_the_labelled_pairs() -> None:
    scored = await pair_scores()
    assert len(scored) == len(pairs()) >= 40
    right, merged, missed = judged(scored)
    assert merged == 0, [(p.a, p.b, p.score) for p in scored if not p.same and p.score >= SAME_THRESHOLD]
    assert missed <= 3 and right >= len(scored) - 3  # reordered ones and "can't stand" vs "hate": kept apart
    measured, accuracy = best_threshold([(p.score, p.same) for p in scored if p.facts_agree])
    assert accuracy == 1.0 and abs(measured - SAME_THRESHOLD) < 0.01  # the constant is what the bench measures
    alone = best_threshold([(p.score, p.same) for p in scored])[1]
    assert alone < 0.8  # the cosine alone cannot tell the near-template pairs apart: why the rule exists


async def test_twelve_distinct_facts_from_one_template_never_compost(memory: AsyncMemory) -> None:
    await _plant(memory, *(f"meeting with client number {i} is on friday" for i in range(1, 13)))
    for _ in range(4):
        result = await HypnagogicCycle(memory).dream()
        assert result.composted == () and result.promoted == (), result
    assert len(await memory.list()) == 12
    for i in (1, 7, 12):
        hits = await memory.recall(f"when is the meeting with client number {i}", limit=12)
        assert f"meeting with client number {i} is on friday" in {h.entry.content for h in hits}


async def test_a_large_cluster_consolidates_in_one_dream_and_a_second_changes_nothing(memory: AsyncMemory) -> None:
    kg = KGent(memory)
    await kg.open()
    await _plant(memory, *PARAPHRASES, "I enjoy playful code reviews", "my dentist is Dr Smith")
    first = await HypnagogicCycle(memory).dream()
    assert len(first.promoted) == 1 and len(first.composted) == len(PARAPHRASES) - 1, first
    winner = await memory.get(first.promoted[0])
    assert winner.lifecycle is Lifecycle.TREE and set(PARAPHRASES) <= set(winner.evidence)
    assert {e.content for e in await memory.list()} == {
        winner.content,
        "I enjoy playful code reviews",
        "my dentist is Dr Smith",
    }
    before, soul = await _state(memory), await memory.soul()
    for _ in range(2):
        again = await HypnagogicCycle(memory).dream()
        assert not again.changed and again.composted == (), again
    assert await _state(memory) == before
    assert (await memory.soul()).revision == soul.revision


async def test_entries_a_dream_left_apart_are_not_merged_by_the_next(memory: AsyncMemory) -> None:
    """X and Y say what W says but not what M1 and M2 say ("Truly" reads as a name): the first dream merges the
    strongest group {W, M1, M2}; once M1 and M2 are composted {W, X, Y} would be a group, but nothing in it is new."""
    for text, confidence in (
        ("I truly prefer minimal code", 0.9),
        ("I want minimal code", 0.8),
        ("I like minimal code", 0.8),
        ("Truly I prefer minimal code", 0.5),
        ("Truly, I really prefer minimal code", 0.5),
    ):
        await memory.remember(text, type=EntryType.PREFERENCE, confidence=confidence, evidence=[text])
    first = await HypnagogicCycle(memory).dream()
    assert len(first.promoted) == 1 and len(first.composted) == 2, first
    assert (await memory.get(first.promoted[0])).content == "I truly prefer minimal code"
    before = await _state(memory)
    second = await HypnagogicCycle(memory).dream()
    assert not second.changed, second
    assert await _state(memory) == before


async def test_a_statement_with_another_name_is_planted_not_nurtured(memory: AsyncMemory) -> None:
    kg = KGent(memory)
    berlin = await kg.observe("I like the Berlin office")
    paris = await kg.observe("I like the Paris office")
    assert berlin.learned and paris.learned and paris.learned.action is Action.PLANTED
    again = await kg.observe("I really like the Berlin office")
    assert again.learned and again.learned.action is Action.NURTURED
    assert again.learned.entry.id == berlin.learned.entry.id


def test_the_cli_dream_sees_planted_entries_and_a_second_dream_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers import CliHarness

    settings = Settings(home=tmp_path / "home", persona="kent")
    cli = CliHarness(settings, capsys, monkeypatch)
    for text in (*PARAPHRASES[:4], *(f"meeting with client number {i} is on friday" for i in range(1, 6))):
        code, _, err = cli("garden", "plant", text)  # written to the anchor; the index catches up later
        assert code == 0, err
    first = cli.json("dream")
    assert len(first["promoted"]) == 1 and len(first["composted"]) == 3, first
    for _ in range(2):
        again = cli.json("dream")
        assert (again["promoted"], again["composted"], again["nurtured"]) == ([], [], 0), again

    async def live() -> set[str]:
        async with AsyncMemory(settings=settings) as memory:
            return {e.content for e in await memory.list()}

    assert {f"meeting with client number {i} is on friday" for i in range(1, 6)} <= asyncio.run(live())

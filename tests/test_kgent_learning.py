"""The K-gent's learner (issue 15 items 1-3): what is kept as lasting, only the user's words, whom a fact is about,
and a change of mind, on both anchors."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
from bench.extraction import cases, kept
from bench.train_memorable import L2, table, train

from kgents.garden.model import EntryType, Lifecycle
from kgents.kgent.change import Relation, relation
from kgents.kgent.learn import Action
from kgents.kgent.memorable import _embedder, shipped
from kgents.kgent.session import KGent
from kgents.kgent.understand import EPISODE_TAG, FACT_TAG, read
from kgents.memory import AsyncMemory
from tests import test_kgent

memory = test_kgent.memory
"""The fixture: persona "kent", on each anchor."""
DATA = Path(__file__).resolve().parent / "data"
NOT_MEMORIES = (
    "I want you to split this into two functions",
    "Never mind that last part",
    "I love that idea, go ahead",
    "You said I should use tabs",
    "My boss said we should rewrite everything",
    "If I had more time I'd learn the cello",
    "Can you check the logs?",
)
MEMORIES = ("I live in Berlin", "I have two cats", "We ship every Tuesday", "I used to work at a bank")


def test_the_tables_hold_as_many_natural_negatives_as_positives() -> None:
    labelled = cases()
    assert sum(k == "-" for _, k, _ in labelled) >= sum(k != "-" for _, k, _ in labelled)
    rows = table()
    kinds = Counter(kind for _, label, kind in rows if label == 0)
    assert sum(label == 0 for _, label, _ in rows) >= sum(label == 1 for _, label, _ in rows)
    assert {"request", "question", "smalltalk", "correction", "hypothetical", "quote", "agent"} <= set(kinds)


def test_the_shipped_weights_are_the_ones_the_table_gives() -> None:
    """memorable.json is what bench/train_memorable.py fits on tests/data/memorable.tsv, and nothing else."""
    ours = shipped()
    again = train(table(), cues_only=False, l2=L2, threshold=ours.threshold)
    assert np.allclose(again.cue, ours.cue, atol=1e-3) and np.allclose(again.embedding, ours.embedding, atol=1e-3)


def test_the_cues_of_casual_chat() -> None:
    """News with its subject dropped is an event; an exclamation about the other person is a reaction, one about the
    speaker's own life is not."""
    from kgents.kgent.cues import CUE_NAMES, cues

    def cue(name: str, line: str) -> float:
        return cues(line)[CUE_NAMES.index(name)]

    assert cue("past event", "Just got back from a week in Crete") == 1.0
    assert cue("past event", "Went hiking with my dad on Sunday") == 1.0
    assert cue("past event", "The weather was lovely") == 0.0
    assert cue("time words", "We went camping over the weekend") == 1.0
    assert cue("exclaimed reaction", "So proud of you!") == 1.0
    assert cue("exclaimed reaction", "That sounds amazing!") == 1.0
    assert cue("exclaimed reaction", "I finally finished my degree!") == 0.0
    assert cue("exclaimed reaction", "So proud of you") == 0.0


def test_chat_lines_are_not_memories_and_plain_facts_are() -> None:
    for line in NOT_MEMORIES:
        assert kept(line) is None, line
    for line in MEMORIES:
        assert kept(line) is not None, line


def test_the_labelled_table_is_kept_right() -> None:
    from bench.extraction import score

    result = score(cases())
    assert result.precision >= 0.95 and result.recall >= 0.9, result.misses


def test_a_fact_about_someone_else_records_whom_it_is_about() -> None:
    reading = read("My sister loves jazz")
    assert reading is not None and reading.subject == "sister" and reading.statement is None
    assert read("My wife and I love hiking") is not None
    assert read("My wife and I love hiking").subject is None  # type: ignore[union-attr]


async def test_someone_elses_fact_is_kept_as_theirs_not_as_a_preference(memory: AsyncMemory) -> None:
    kg = KGent(memory)
    sister = await kg.observe("My sister lives in Oslo")
    jazz = await kg.observe("My sister loves jazz")
    for reply in (sister, jazz):
        assert reply.kept is not None and reply.kept.entry_type is EntryType.INSIGHT
        assert {"subject:sister", FACT_TAG} <= set(reply.kept.tags) and "likes" not in reply.kept.tags
    mine = await kg.observe("I live in Lisbon")
    assert mine.learned is not None and mine.learned.action is Action.PLANTED  # her home is not mine
    assert len(await memory.list()) == 3


async def test_the_agents_replies_are_never_stored(memory: AsyncMemory) -> None:
    kg = KGent(memory)
    said = ["I prefer tabs over spaces", "I live in Berlin", "What do you know about me?", "I have two cats", "ok"]
    replies = [(await kg.observe(line)).text for line in said]
    entries = await memory.list(limit=100)
    assert entries and all(e.content in said for e in entries), [e.content for e in entries]
    assert not any(e.content == r or r in e.content for e in entries for r in replies if r)
    quoted = await kg.observe("You said I should use tabs")
    assert quoted.kept is not None and EPISODE_TAG in quoted.kept.tags and quoted.learned is None


async def test_a_change_of_mind_supersedes_and_history_keeps_the_old(memory: AsyncMemory) -> None:
    kg = KGent(memory)
    lisbon = await kg.observe("I live in Lisbon")
    porto = await kg.observe("I've moved to Porto")
    assert lisbon.kept is not None and porto.learned is not None and porto.learned.action is Action.SUPERSEDED
    old = await memory.get(lisbon.kept.id)
    assert old.lifecycle is Lifecycle.COMPOST and f"superseded-by:{porto.learned.entry.id}" in old.tags
    assert [e.content for e in await memory.list()] == ["I've moved to Porto"]
    assert len(await memory.history(lisbon.kept.id)) >= 2
    again = await kg.observe("I live in Porto")
    assert again.learned is not None and again.learned.action is Action.NURTURED
    assert again.learned.entry.id == porto.learned.entry.id


async def test_a_fact_is_composted_only_by_a_change_of_its_own(memory: AsyncMemory) -> None:
    """Leaving work for the day is no change of job, nor is starting at the gym; someone else leaving a place is not
    the user leaving it."""
    kg = KGent(memory)
    facts = ("I drive to work every day", "I got a job at Acme", "I live in Lisbon")
    kept = [(await kg.observe(f)).kept for f in facts]
    for line in (
        "I left work early today to pick up the kids.",
        "Honestly my brother no longer works at Acme.",
        "Honestly my sister no longer lives in Lisbon.",
        "I just started at the gym, three times a week.",
        "I work at home on Fridays.",
        "I'm moving to the couch for a nap.",
        "I am based in the office on Mondays.",
        "I left Lisbon this morning to visit my parents.",
    ):
        reply = await kg.observe(line)
        assert reply.learned is None or reply.learned.action is not Action.SUPERSEDED, line
    for entry in kept:
        assert entry is not None and (await memory.get(entry.id)).lifecycle is not Lifecycle.COMPOST, entry
    quit_ = await kg.observe("I no longer work at Acme")
    assert quit_.learned is not None and quit_.learned.action is Action.SUPERSEDED
    moved = await kg.observe("I've moved to Porto")
    assert moved.learned is not None and moved.learned.action is Action.SUPERSEDED


async def test_facts_differing_in_specifics_stay_two(memory: AsyncMemory) -> None:
    kg = KGent(memory)
    for line in ("I went to Paris in 2019", "I went to Paris in 2021", "I adopted a dog last month"):
        reply = await kg.observe(line)
        assert reply.learned is not None and reply.learned.action is Action.PLANTED, line
    assert len(await memory.list()) == 3


async def test_a_transcript_keeps_every_turn_and_answers_nothing(memory: AsyncMemory) -> None:
    kg = KGent(memory)
    question = await kg.listen("Have you ever been to Spain?", speaker="Ana")
    fact = await kg.listen("I grew up in Seville, actually.", speaker="Ana")
    assert question.kept is not None and EPISODE_TAG in question.kept.tags and not question.cited
    assert fact.kept is not None and fact.kept.content == "Ana: I grew up in Seville, actually."
    assert EPISODE_TAG not in fact.kept.tags


def test_the_fact_pairs() -> None:
    with (DATA / "fact_pairs.tsv").open(encoding="utf-8") as f:
        pairs = [r for r in csv.reader(f, delimiter="\t") if r and not r[0].startswith("#")]
    assert {want for _, _, want in pairs} == {r.value for r in Relation} and len(pairs) >= 40
    vectors = np.asarray(_embedder().embed([t for p in pairs for t in p[:2]]), dtype=np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    right = sum(
        relation(old, new, float(vectors[2 * i] @ vectors[2 * i + 1])).value == want
        for i, (old, new, want) in enumerate(pairs)
    )
    assert right / len(pairs) >= 0.95


async def test_a_message_that_tells_and_asks_is_learned_then_answered(memory: AsyncMemory) -> None:
    kg = KGent(memory)
    await kg.observe("The weather is nice today")  # an episode, never what the K-gent "knows"
    reply = await kg.observe("I just moved to Porto for a new job. What do you know about me?")
    assert reply.learned is not None and reply.learned.action is Action.PLANTED
    assert [e.content for e in reply.cited] == ["I just moved to Porto for a new job. What do you know about me?"]
    asked = await kg.observe("What do you know about me?")
    assert all(EPISODE_TAG not in e.tags for e in asked.cited) and len(asked.cited) == 1
    assert len(await memory.list()) == 2  # the questions alone were never stored

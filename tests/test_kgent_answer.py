"""The K-gent's answers cite what is relevant: the relevance bar drops what only looks alike, "what do you know
about X" answers from what was learned about X, and questions about the user as a whole stay sensible."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kgents.config import Settings
from kgents.garden.model import EntryType
from kgents.kgent.answer import NOTHING_YET, asked
from kgents.kgent.session import KGent
from kgents.memory import AsyncMemory

UNRELATED = [
    ("Ships small pull requests several times a day", EntryType.BEHAVIOR, 0.9),
    ("Values honesty over politeness in code review", EntryType.VALUE, 0.85),
    ("My sister adopted a grey cat last spring", EntryType.INSIGHT, 0.8),
    ("The train to the coast was delayed again", EntryType.INSIGHT, 0.8),
]
DEPLOYS = [
    ("We deploy the billing service every Tuesday", EntryType.PATTERN, 0.6),
    ("Every deploy goes through the staging cluster first", EntryType.PATTERN, 0.5),
]
STYLE = [
    ("I prefer minimal code", EntryType.PREFERENCE, 0.7),
    ("I like type hints everywhere", EntryType.PREFERENCE, 0.65),
]


@pytest.fixture
async def kgent(anchor_settings: Settings) -> AsyncIterator[KGent]:
    async with AsyncMemory(settings=anchor_settings.with_persona("kent")) as memory:
        for text, kind, confidence in UNRELATED + DEPLOYS + STYLE:
            await memory.remember(text, type=kind, confidence=confidence)
        kg = KGent(memory)
        await kg.open()
        yield kg


def test_how_a_question_is_read() -> None:
    assert asked("What do you know about my deploys?").topic == "my deploys"
    assert asked("Tell me about the billing service.").topic == "the billing service"
    assert asked("What do you know about me?").about_me and asked("Who am I?").about_me
    style = (EntryType.PREFERENCE, EntryType.PATTERN, EntryType.BEHAVIOR, EntryType.VALUE)
    assert asked("What do you know about my style?").kinds == style
    assert asked("What are my values?").kinds == (EntryType.VALUE,)
    plain = asked("When did Caroline go to the support group?")
    assert plain.topic == "When did Caroline go to the support group?" and not plain.about_me and not plain.kinds


async def test_what_do_you_know_about_x_answers_from_what_was_learned_about_x(kgent: KGent) -> None:
    reply = await kgent.answer("What do you know about our deploys?")
    assert {e.content for e in reply.cited} == {text for text, _, _ in DEPLOYS}, reply.text


async def test_a_question_about_something_never_said_cites_nothing(kgent: KGent) -> None:
    for question in ("What do you know about my skydiving trips?", "Which opera did I see in Vienna?"):
        reply = await kgent.answer(question)
        assert reply.cited == () and reply.text == NOTHING_YET, question
    kgent.relevance_bar = False  # what the chat did before: the nearest five, whatever their score
    assert len((await kgent.answer("Which opera did I see in Vienna?")).cited) == 5


async def test_about_me_and_my_style_stay_sensible(kgent: KGent) -> None:
    me = await kgent.answer("What do you know about me?")
    assert [e.content for e in me.cited][:2] == [UNRELATED[0][0], UNRELATED[1][0]], "the strongest memories"
    style = await kgent.answer("What do you know about my style?")
    kinds = {EntryType.PREFERENCE, EntryType.PATTERN, EntryType.BEHAVIOR, EntryType.VALUE}
    assert style.cited and all(e.entry_type in kinds for e in style.cited), style.text
    assert {text for text, _, _ in STYLE} <= {e.content for e in style.cited}

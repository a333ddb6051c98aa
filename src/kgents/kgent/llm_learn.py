"""Learning with an LLM, as the field does it (mem0's two steps), applied through `MemoryAPI`.

1. Facts: the model reads the user's message, and only it (never the K-gent's replies, never earlier turns), and
   proposes the lasting facts it states, each a short first-person sentence with an entry type.
2. Decisions: each fact is recalled against the garden (its nearest memories, dense); the model sees the facts and
   those memories under small numbers (not their ids, which a model garbles) and decides, per fact, ADD (new),
   UPDATE (it changes or refines memory N), DELETE (it says memory N is no longer true) or NONE (already known).

Applied: ADD plants the fact (evidence: the message), unless a memory already says the same thing (`sameness`),
which it nurtures instead; UPDATE nurtures memory N when the fact says the same thing, else supersedes it (the new
entry planted, N composted with a pointer to it); DELETE composts N with the message as the reason, kept in its
history; NONE changes nothing. A reply the model got wrong (not the JSON asked for) is a failure like a timeout:
one warning, and the rule-based learner takes the message.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from kgents.errors import KgentsError
from kgents.garden.model import EntryType, GardenEntry
from kgents.kgent.answer import acknowledge, cite
from kgents.kgent.learn import Action, Learned
from kgents.kgent.llm import LLM, LLMFailure, json_object
from kgents.kgent.sameness import says_the_same
from kgents.memory.api import MemoryAPI, RecallHit
from kgents.soul.model import DialogueMode

LLM_TAG = "llm"
LLM_CONFIDENCE = 0.6
MAX_FACTS = 10
MAX_FACT_CHARS = 500
NEAREST = 5
"""Memories recalled per fact for the model to weigh it against (mem0's default)."""

FACTS_PROMPT = """You read one message a user wrote to their assistant and list the lasting facts it states about
the user or the people and things in their life: preferences, values, habits, plans, relationships, places, work.
Leave out requests and orders to the assistant, questions, greetings, thanks, hypotheticals and quotes of others.
Write each fact as one short sentence in the user's voice ("I live in Berlin", "My sister lives in Oslo"), keeping
every name, number and date. Type each: PREFERENCE, VALUE, BEHAVIOR, PATTERN or INSIGHT.
Reply with JSON only: {"facts": [{"text": "...", "type": "PREFERENCE"}]} (an empty list when there is none)."""

DECIDE_PROMPT = """You keep a user's memory. You get new facts (numbered) and the existing memories nearest to them
(numbered). For each new fact decide one event:
ADD: new information; UPDATE: it changes or refines existing memory "id" (give the fact's wording as "text");
DELETE: it says existing memory "id" is no longer true; NONE: the memory already holds it.
Reply with JSON only: {"memory": [{"fact": 0, "event": "ADD|UPDATE|DELETE|NONE", "id": "0", "text": "..."}]}"""


class Event(StrEnum):
    ADD = "ADD"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    NONE = "NONE"


@dataclass(frozen=True, slots=True)
class Fact:
    text: str
    kind: EntryType
    near: tuple[RecallHit, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    fact: int
    event: Event
    target: int | None = None
    text: str | None = None


@dataclass
class Outcome:
    """What one message did: entries learned (planted, nurtured, superseded) and entries forgotten."""

    facts: int = 0
    learned: list[Learned] = field(default_factory=list)
    forgotten: list[GardenEntry] = field(default_factory=list)

    @property
    def cited(self) -> tuple[GardenEntry, ...]:
        return (*(done.entry for done in self.learned), *self.forgotten)

    def text(self, mode: DialogueMode) -> str | None:
        """The reply; None when the message held no fact."""
        lines = [acknowledge(mode, done) for done in self.learned]
        lines += [f"Forgotten: {e.content} {cite(e)} (kept in its history)." for e in self.forgotten]
        if lines:
            return " ".join(lines)
        return "That matches what I knew." if self.facts else None


def parse_facts(data: dict[str, Any]) -> list[Fact]:
    items = data.get("facts")
    if not isinstance(items, list):
        raise LLMFailure("a JSON reply without the list of facts asked for")
    facts: list[Fact] = []
    for item in items[:MAX_FACTS]:
        text = item.get("text") if isinstance(item, dict) else item
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_FACT_CHARS:
            continue
        kind = str(item.get("type", "")).upper() if isinstance(item, dict) else ""
        typed = EntryType(kind) if kind in EntryType.__members__ else EntryType.INSIGHT
        facts.append(Fact(" ".join(text.split()), typed))
    return facts


def parse_decisions(data: dict[str, Any], facts: int, memories: int) -> list[Decision]:
    """The decisions that name a fact and (for UPDATE and DELETE) a memory shown; the rest are dropped."""
    items = data.get("memory", data.get("decisions"))
    if not isinstance(items, list):
        raise LLMFailure("a JSON reply without the list of decisions asked for")
    decisions: list[Decision] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        fact, event, target = _number(item.get("fact")), str(item.get("event", "")).upper(), _number(item.get("id"))
        if fact is None or not 0 <= fact < facts or event not in Event.__members__:
            continue
        if event in (Event.UPDATE, Event.DELETE) and (target is None or not 0 <= target < memories):
            continue
        text = item.get("text")
        decisions.append(Decision(fact, Event(event), target, text if isinstance(text, str) and text.strip() else None))
    return decisions


def _number(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, str) and value.strip().isdigit() else None


async def learn_with_llm(memory: MemoryAPI, llm: LLM, message: str) -> Outcome | None:
    """The message learned through the LLM's two steps; None when the LLM failed (or rests): the caller's rules
    take it then."""
    if not llm.available:
        return None
    deadline = llm.deadline()
    try:
        facts = parse_facts(json_object(await llm.chat(FACTS_PROMPT, message, deadline=deadline)))
        if not facts:
            return Outcome()
        facts = [Fact(f.text, f.kind, tuple(await memory.recall(f.text, limit=NEAREST, mode="dense"))) for f in facts]
        shown = _shown(facts)
        reply = await llm.chat(DECIDE_PROMPT, _decision_request(facts, shown), deadline=deadline)
        decisions = parse_decisions(json_object(reply), len(facts), len(shown))
    except LLMFailure as failure:
        llm.failed(failure, "to learn from a message")
        return None
    outcome = Outcome(facts=len(facts))
    for decision in decisions:
        try:
            await _apply(memory, message, facts[decision.fact], decision, shown, outcome)
        except KgentsError:  # e.g. two decisions on one memory: the first one stands
            continue
    return outcome


def _shown(facts: Sequence[Fact]) -> list[GardenEntry]:
    """The memories shown to the model, each once, numbered by position."""
    seen: dict[uuid.UUID, GardenEntry] = {}
    for fact in facts:
        for hit in fact.near:
            seen.setdefault(hit.entry.id, hit.entry)
    return list(seen.values())


def _decision_request(facts: Sequence[Fact], shown: Sequence[GardenEntry]) -> str:
    return json.dumps(
        {
            "new_facts": [{"fact": i, "text": f.text} for i, f in enumerate(facts)],
            "existing_memories": [{"id": str(i), "text": e.content} for i, e in enumerate(shown)],
        },
        ensure_ascii=False,
    )


async def _apply(
    memory: MemoryAPI, message: str, fact: Fact, decision: Decision, shown: Sequence[GardenEntry], outcome: Outcome
) -> None:
    text = decision.text or fact.text
    if decision.event is Event.NONE:
        return
    if decision.event is Event.DELETE and decision.target is not None:
        gone = await memory.compost(shown[decision.target].id, evidence=f"the user said: {message}")
        outcome.forgotten.append(gone)
        return
    old = shown[decision.target] if decision.event is Event.UPDATE and decision.target is not None else None
    same = _same(fact, text, old)
    if same is not None:
        outcome.learned.append(Learned(Action.NURTURED, await memory.nurture(same.id, evidence=message)))
        return
    planted = await memory.remember(
        text, type=fact.kind, tags=["kgent", LLM_TAG], confidence=LLM_CONFIDENCE, evidence=[message]
    )
    if old is None:
        outcome.learned.append(Learned(Action.PLANTED, planted))
        return
    composted = await memory.compost(old.id, successor=planted.id, evidence=f"updated: {message}")
    outcome.learned.append(Learned(Action.SUPERSEDED, planted, composted))


def _same(fact: Fact, text: str, old: GardenEntry | None) -> GardenEntry | None:
    """The memory this fact says the same thing as (the one named for UPDATE, else any nearest one), by the
    K-gent's own rule: a duplicate nurtures what it repeats."""
    for hit in fact.near:
        if (old is None or hit.entry.id == old.id) and says_the_same(hit.entry.content, text, hit.score):
            return hit.entry
    return None

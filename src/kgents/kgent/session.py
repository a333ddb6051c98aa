"""The K-gent session: open a soul, observe each user message (learn from it or answer it), close (soul saved,
interaction counted, a dream). Written against `MemoryAPI` only, so it runs in-process or through a server."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from kgents.garden.filters import EntryFilter
from kgents.garden.model import GardenEntry
from kgents.kgent.answer import acknowledge, asked, compose, relevant, small_talk
from kgents.kgent.cues import sentences
from kgents.kgent.extract import is_question, is_small_talk
from kgents.kgent.facts import labelled, learn_fact, plant_episode
from kgents.kgent.learn import Learned, learn
from kgents.kgent.understand import EPISODE_TAG, Reading, read
from kgents.memory.api import MemoryAPI, SoulView
from kgents.soul.model import DialogueMode, parse_mode
from kgents.synapse.relevance import DEFAULT_MIN_SCORE

if TYPE_CHECKING:
    from kgents.kgent.llm import LLM

RECALL_LIMIT = 5


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    cited: tuple[GardenEntry, ...] = ()
    learned: Learned | None = None
    latency_ms: float = 0.0
    kept: GardenEntry | None = None
    """The entry the message was kept in (a lasting memory, or an episode), if any."""


@dataclass
class KGent:
    """One K-gent session over a memory: `await kg.open()`, `await kg.observe(text)`, `await kg.close()`."""

    memory: MemoryAPI
    llm: LLM | None = None
    soul: SoulView | None = None
    last: Reply | None = None
    messages: int = 0
    learned: list[Learned] = field(default_factory=list)
    relevance_bar: bool = True
    """Answers cite only memories at or above `relevance.DEFAULT_MIN_SCORE` (off: the best hits, whatever their
    score; bench/recall.py's "before")."""

    async def open(self) -> SoulView:
        self.soul = await self.memory.soul()
        return self.soul

    @property
    def mode(self) -> DialogueMode:
        return parse_mode(self.soul.mode if self.soul else DialogueMode.REFLECT)

    async def set_mode(self, mode: str) -> SoulView:
        self.soul = await self.memory.set_mode(parse_mode(mode).value)
        return self.soul

    async def observe(self, text: str, *, speaker: str | None = None, observed_at: datetime | None = None) -> Reply:
        """Learn from a statement, answer a question, or chat back. Only what the user says comes here: the
        K-gent's own replies are never observed, so never stored. `speaker`: the user's name, when a transcript
        gives one (the content is then labelled "<speaker>: <words>"); `observed_at`: when it was said."""
        began = time.perf_counter()
        self.messages += 1
        if self.soul is None:
            await self.open()
        reply: Reply | None = None
        if is_question(text):
            reply = await self._tell_and_ask(text, speaker, observed_at)
        elif self.llm is not None and not is_small_talk(text):
            reply = await self._learn_with_llm(text)
        if reply is None:  # no LLM, or it failed or rests: the K-gent's own learner
            reading = read(text)
            reply = Reply(small_talk(self.mode)) if reading is None else await self._keep(reading, speaker, observed_at)
        elapsed = (time.perf_counter() - began) * 1000.0
        reply = Reply(reply.text, reply.cited, reply.learned, elapsed, reply.kept)
        self.last = reply
        return reply

    async def listen(self, text: str, *, speaker: str | None = None, observed_at: datetime | None = None) -> Reply:
        """Take in one turn of a transcript of the user's own conversation (with other people, not with the
        K-gent): nothing is answered, and every turn is kept: what carries a lasting fact as `observe` keeps it,
        anything else (a question to a friend, small talk) as an episode."""
        self.messages += 1
        if not text.strip():
            return Reply("")
        return await self._keep(read(text) or Reading(text, False, None, None, 0.0), speaker, observed_at)

    async def _tell_and_ask(self, text: str, speaker: str | None, observed_at: datetime | None) -> Reply:
        """A question is answered; when the message also tells something lasting ("I moved to Porto. Any tips?"),
        that is learned first (a message of questions alone is never stored)."""
        reading = read(text)
        if reading is None or not reading.lasting:
            return await self.answer(text)
        told = await self._keep(reading, speaker, observed_at)
        answered = await self.answer(" ".join(s for s in sentences(text) if is_question(s)) or text)
        return Reply(f"{told.text} {answered.text}", answered.cited, told.learned, kept=told.kept)

    async def _learn_with_llm(self, text: str) -> Reply | None:
        """The LLM's two steps over the user's message alone (`llm_learn`); None when the LLM failed or rests."""
        from kgents.kgent.llm_learn import learn_with_llm

        assert self.llm is not None
        outcome = await learn_with_llm(self.memory, self.llm, text)
        if outcome is None:
            return None
        self.learned.extend(outcome.learned)
        said = outcome.text(self.mode)
        first = outcome.learned[0] if outcome.learned else None
        return Reply(said or small_talk(self.mode), outcome.cited, first, kept=first.entry if first else None)

    async def _keep(self, reading: Reading, speaker: str | None, observed_at: datetime | None) -> Reply:
        """A preference, value or habit through `learn`; another lasting fact through `facts.learn_fact`;
        anything else as an episode (kept, not learned)."""
        if not reading.lasting:
            episode = await plant_episode(self.memory, reading.text, speaker=speaker, observed_at=observed_at)
            return Reply(small_talk(self.mode), kept=episode)
        if reading.statement is not None:
            statement = replace(reading.statement, content=labelled(reading.statement.content, speaker))
            done = await learn(self.memory, statement, observed_at=observed_at)
        else:
            done = await learn_fact(
                self.memory, reading.text, reading.subject, speaker=speaker, observed_at=observed_at
            )
        self.learned.append(done)
        return Reply(acknowledge(self.mode, done), (done.entry,), done, kept=done.entry)

    async def answer(self, question: str, *, asked_at: datetime | None = None) -> Reply:
        """Recall over the garden, shaped by the mode, citing the entries used: what clears the relevance bar
        for the question's topic ("what do you know about X": X); for a question about the user as a whole, the
        strongest memories; for one about their style, preferences, values or habits, what clears the bar and
        then the strongest entries of those types (never an unrelated fact)."""
        wants = asked(question)
        if wants.about_me:  # the strongest lasting memories (episodes are what was said, not what is known)
            strongest = await self.memory.list(order_by="confidence", limit=RECALL_LIMIT * 4)
            entries = [e for e in strongest if EPISODE_TAG not in e.tags][:RECALL_LIMIT]
        else:
            bar = DEFAULT_MIN_SCORE if self.relevance_bar else None
            hits = await self.memory.recall(wants.topic, limit=RECALL_LIMIT * 2, explain=True, asked_at=asked_at)
            entries = relevant(hits, bar, RECALL_LIMIT)
            if wants.kinds and len(entries) < RECALL_LIMIT:
                flt = EntryFilter(entry_types=wants.kinds)
                strongest = await self.memory.list(flt, order_by="confidence", limit=RECALL_LIMIT)
                known = {e.id for e in entries}
                entries += [e for e in strongest if e.id not in known][: RECALL_LIMIT - len(entries)]
        text = compose(self.mode, entries)
        if self.llm is not None and entries:
            text = await self.llm.phrase(self.mode, question, entries, text) or text
        return Reply(text, tuple(entries))

    def why(self) -> list[GardenEntry]:
        """The entries behind the last reply."""
        return [] if self.last is None else list(self.last.cited)

    async def close(self) -> SoulView:
        """Count the session as an interaction (the soul is saved). The dream is the caller's to run (the chat does,
        with `hypnagogia.dream`): the K-gent and the dream sit side by side, neither imports the other."""
        self.soul = await self.memory.record_interaction(tokens=self.messages)
        if self.llm is not None:
            await self.llm.close()
        return self.soul

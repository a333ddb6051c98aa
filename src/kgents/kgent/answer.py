"""How the K-gent answers, as pure functions: the dialogue mode changes what is said, not only a label."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from kgents.garden.model import EntryType, GardenEntry
from kgents.kgent.learn import Action, Learned, polarity_of
from kgents.memory.api import RecallHit
from kgents.soul.model import DialogueMode

NOTHING_YET = "I don't know anything about that yet. Tell me in your own words and I'll remember it."


_ASKS_ABOUT = re.compile(
    r"^\s*(?:so\s*,?\s*)?(?:what\s+(?:do|did|else\s+do)\s+you\s+(?:know|remember|recall)|what\s+have\s+i\s+(?:told|said\s+to)"
    r"\s+you|what\s+did\s+i\s+(?:tell\s+you|say)|tell\s+me|remind\s+me)\s+(?:about|of|on|regarding)\s+(?P<topic>.+?)"
    r"\s*[?.!]*\s*$",
    re.IGNORECASE,
)
_ME = re.compile(r"^(?:me|myself|my\s*self|us)$|^who\s+am\s+i\b", re.IGNORECASE)
_KINDS = {
    "style": (EntryType.PREFERENCE, EntryType.PATTERN, EntryType.BEHAVIOR, EntryType.VALUE),
    "preference": (EntryType.PREFERENCE,),
    "like": (EntryType.PREFERENCE,),
    "value": (EntryType.VALUE,),
    "habit": (EntryType.BEHAVIOR, EntryType.PATTERN),
    "pattern": (EntryType.PATTERN,),
    "work": (EntryType.PREFERENCE, EntryType.PATTERN, EntryType.BEHAVIOR, EntryType.VALUE),
}
_MY_KIND = re.compile(
    r"\b(?:my|how\s+(?:do\s+)?i)\s+(?:(?:coding|working|work|writing)\s+)?(style|preference|like|value|habit|pattern|work)s?\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Asked:
    """What a question asks the K-gent for: `topic` is what to recall (the words after "what do you know about",
    else the whole question); `about_me` a question about the user as a whole ("what do you know about me?",
    "who am I?"), answered from the strongest memories; `kinds` the entry types a question about the user's
    style, preferences, values or habits completes its answer with (the strongest of them)."""

    topic: str
    about_me: bool = False
    kinds: tuple[EntryType, ...] = ()


def asked(question: str) -> Asked:
    """How the K-gent reads a question (pure)."""
    found = _ASKS_ABOUT.match(question)
    topic = found["topic"].strip() if found else question.strip()
    if _ME.search(topic if found else question.strip()):
        return Asked(topic, about_me=True)
    kind = _MY_KIND.search(topic)
    return Asked(topic, kinds=_KINDS[kind[1].lower()] if kind else ())


def relevant(hits: Sequence[RecallHit], bar: float | None, limit: int) -> list[GardenEntry]:
    """The entries an answer cites: the first `limit` hits whose score and own relevance (before the lift a
    neighbouring memory gives it: a conversation's turns share their relevance, a garden of separate facts does
    not) both clear `bar` (None: every hit)."""
    kept = [h for h in hits if bar is None or min(h.score, (h.why or {}).get("own", h.score)) >= bar]
    return [h.entry for h in kept[:limit]]


def cite(entry: GardenEntry) -> str:
    return f"[{entry.id.hex[:8]}]"


def _line(entry: GardenEntry) -> str:
    return f"{entry.content} {cite(entry)} ({entry.lifecycle.value.lower()}, {entry.confidence:.2f})"


def compose(mode: DialogueMode, entries: Sequence[GardenEntry]) -> str:
    """An answer from the entries recalled for a question, shaped by the mode."""
    if not entries:
        return NOTHING_YET
    likes = [e for e in entries if polarity_of(e) > 0]
    dislikes = [e for e in entries if polarity_of(e) < 0]
    if mode is DialogueMode.REFLECT:
        lines = ["Here is what you have told me:", *(f"- {_line(e)}" for e in entries)]
        return "\n".join(lines)
    if mode is DialogueMode.ADVISE:
        lines = ["My advice, from what I know of you:"]
        lines += [f"- keep to it: {e.content} {cite(e)}" for e in likes]
        lines += [f"- steer clear: {e.content} {cite(e)}" for e in dislikes]
        return "\n".join(lines)
    if mode is DialogueMode.CHALLENGE:
        weakest = sorted(entries, key=lambda e: e.confidence)
        lines = ["Let me push back on what you've told me:"]
        for e in weakest[:3]:
            seen = len(e.evidence)
            lines.append(
                f'- you said "{e.content}" {cite(e)}, but I\'ve heard it {seen} time{"s" if seen != 1 else ""}'
                f" (confidence {e.confidence:.2f}). Is it a rule, or a habit worth questioning?"
            )
        return "\n".join(lines)
    lines = ["Some threads to follow from what I know:"]
    for a, b in itertools.pairwise(entries):
        lines.append(f'- "{a.content}" {cite(a)} and "{b.content}" {cite(b)}: how do these two meet?')
    if len(entries) == 1:
        lines.append(f'- "{entries[0].content}" {cite(entries[0])}: where else does this show up for you?')
    return "\n".join(lines)


def acknowledge(mode: DialogueMode, learned: Learned) -> str:
    """The reply to a statement the K-gent learned from."""
    e = learned.entry
    if learned.action is Action.PLANTED:
        text = f"Noted: {e.content} {cite(e)}."
    elif learned.action is Action.NURTURED:
        text = f"That matches what I knew: {e.content} {cite(e)}, now at {e.confidence:.2f}."
    elif learned.action is Action.CONTRADICTED:
        text = f'That goes against {cite(e)} "{e.content}": I\'m less sure of it now ({e.confidence:.2f}).'
    else:
        old = learned.previous
        before = "" if old is None else f' I\'ve let go of "{old.content}" {cite(old)}.'
        text = f"Changed mind noted: {e.content} {cite(e)}.{before}"
    if mode is DialogueMode.CHALLENGE and learned.action is Action.PLANTED:
        text += " What would make you change your mind on that?"
    elif mode is DialogueMode.EXPLORE and learned.action is Action.PLANTED:
        text += " Where did that come from?"
    return text


def small_talk(mode: DialogueMode) -> str:
    return {
        DialogueMode.REFLECT: "I'm listening. Tell me how you like to work.",
        DialogueMode.ADVISE: "Ask me for advice, or tell me what you prefer.",
        DialogueMode.CHALLENGE: "Say something you believe about your work, and I'll test it.",
        DialogueMode.EXPLORE: "What shall we explore?",
    }[mode]

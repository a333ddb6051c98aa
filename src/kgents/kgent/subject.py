"""Whom a sentence is about, when it is not the speaker: "My sister lives in Oslo" → "sister", "Anna works at the
bank" → "anna" (a capitalised first word counts as a name only before a verb of someone's life: "Correctness is
important to me" is the speaker's). Pure, no I/O. "My wife and I ..." is about the speaker (None)."""

from __future__ import annotations

import re

_PEOPLE = (
    "sister|brother|mom|mum|mother|dad|father|parents|son|daughter|kids|kid|children|child|wife|husband|partner|"
    "boyfriend|girlfriend|fiance|fiancee|friend|friends|boss|manager|colleague|coworker|roommate|flatmate|"
    "grandma|grandmother|grandpa|grandfather|aunt|uncle|cousin|niece|nephew|neighbour|neighbor|baby|family|"
    "dog|cat|puppy|kitten|team|band|students|teacher|twin|sibling|siblings|in-laws"
)
_OTHER = re.compile(
    r"^(?:(?:yeah|yes|oh|so|and|well|actually|also|btw|haha)[,!]?\s+)*(?:my|our)\s+(?:(?:little|older|younger|big|"
    rf"best|new|old|eldest|youngest|oldest)\s+)?(?P<who>{_PEOPLE})\b(?!\s+and\s+(?:i|me)\b)(?!'s?\s)"
)
_NAMED = re.compile(
    r"^(?P<who>[A-Z][a-z]+)\s+(?:lives|lived|works|worked|loves|likes|hates|plays|moved|studies|started|just got)\b"
)
_LABEL = re.compile(r"^\s*[A-Z][\w'.-]*(?:\s+[A-Z][\w'.-]*){0,2}\s*:\s+")
_NOT_PEOPLE = frozenset({"It", "That", "This", "There", "Everything", "Everyone", "Nothing", "Work", "Life"})


def unlabelled(text: str) -> str:
    """The words without a speaker's label ("Caroline: I live in Lisbon" → "I live in Lisbon")."""
    return _LABEL.sub("", text, count=1).replace("\u2019", "'").strip().rstrip(".!")


def subject_of(sentence: str) -> str | None:
    """Whom a sentence is about (lower case), or None when it is about the speaker."""
    clean = unlabelled(sentence)
    found = _OTHER.match(clean.lower())
    if found:
        return found["who"]
    named = _NAMED.match(clean)
    if named and named["who"] not in _NOT_PEOPLE:
        return named["who"].lower()
    return None

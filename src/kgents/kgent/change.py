"""A change of mind, a repeat, or a second fact: how a new fact stands to one already kept. Pure, no I/O.

A fact fills a *slot* when it says where the person lives, whom they work for, what they do, how old they are,
what they are called, what they eat, who they are with: one value at a time. A new value in the same slot
supersedes the old ("I've moved to Porto" after "I live in Lisbon"); the same value repeats it; a change announced
about a value ("I switched from vim to emacs", "I no longer work at the bank") supersedes the fact that holds it.
Without a slot, two facts are the same only by `sameness.says_the_same` (dense cosine plus the same specifics and
word order), so facts that differ in their specifics ("I went to Paris in 2019" / "in 2021") stay two.
Measured on tests/data/fact_pairs.tsv (tests/test_kgent_change.py, bench/learning.py).
"""

from __future__ import annotations

import re
from enum import StrEnum

from kgents.kgent.sameness import SAME_THRESHOLD, says_the_same
from kgents.kgent.subject import subject_of, unlabelled
from kgents.resonance.lexical import STOP_WORDS, tokens


class Relation(StrEnum):
    SUPERSEDES = "supersedes"
    SAME = "same"
    DISTINCT = "distinct"


_VALUE = r"((?:the |a |an )?[\w'&.-]+(?: [A-Z0-9][\w'&.-]*)*)"
_NAME = r"([A-Z][\w'&.-]*(?: [A-Z0-9][\w'&.-]*)*)"
_SLOTS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (slot, re.compile(pattern))
    for slot, pattern in (
        (
            "home",
            r"\b(?:[Ii]|[Ww]e)(?:'ve|'m|'re| have| am| are)? (?:now |just |recently |finally )?(?:live|living|"
            rf"reside|moved|moving|relocated|settled|based)(?: back)? (?:in|to|near) {_NAME}",  # a place by its name:
            # moving to the couch, based in the office: no home
        ),
        (
            "work",
            r"\b(?:[Ii]|[Ww]e)(?:'ve|'m| have| am)? (?:now |just )?(?:(?:work|working|got a job)"
            rf" (?:at|for) (?!home\b){_VALUE}|(?:started|joined) (?:at|for) {_NAME})"  # started at the gym: no job
            rf"|\b(?<!lost )[Mm]y (?:new )?job (?:is )?at {_VALUE}",
        ),
        (
            "role",
            r"\bi(?:'m| am| work as| now work as)(?: now)? (?:a|an) ((?:[a-z]+ )?(?:[a-z]+(?:er|or|ist|ian|ant|ent|ic)|"
            r"nurse|chef|student|medic|vet|cook|clerk|coach|nanny|pilot|judge|monk|priest))(?: now)?$",
        ),
        ("age", r"\bi(?:'m| am| just turned| turned| 've turned) (\d+|[a-z]+-[a-z]+)(?: years old)?$"),
        ("name", r"\b(?:my name is|call me|i go by) (\w+)"),
        ("diet", r"\bi(?:'m| am)(?: now)? (?:a )?(vegan|vegetarian|pescatarian|carnivore)\b"),
        ("status", r"\bi(?:'m| am| got| just got)(?: now)? (married|divorced|single|engaged|widowed)\b"),
        (
            "editor",
            r"\bi(?:'ve| have)? (?:now )?(?:use|code in|write in|switched to|moved to) (vim|emacs|"
            r"vscode|vs code|neovim|pycharm|sublime|intellij|nano|helix|zed)\b",
        ),
    )
)
_FROM = re.compile(
    r"\b(?:switched|moved|changed) from ([\w.-]+)|"
    r"\b(?:i|we)(?:'m|'re| am| are)? no longer (?:\w+ )?(?:at|in|for|use) (?:the )?([\w.-]+)|"
    r"\bi(?:'ve| have| just)? (?:left|quit) (?:my (?:job|position) (?:at|with) )?(?:the )?([\w.-]+)"
    r"(?=\s*(?:$|[.!?,;]|for good|behind|last|in \d{4}|(?:and|to) (?:join|start|move|work|became|now)))|"
    # "left Lisbon this morning": a trip, not a move
    r"\bi (?:just )?lost my job (?:at|with) (?:the )?([\w.-]+)"
)
_LIGHT = frozenset(["got", "get", "go", "just", "now", "also", "still", "realli", "veri", "much", "alway", "actual"])
"""Stems a repeat may add or drop without saying something else."""


def slot_of(text: str) -> tuple[str, str] | None:
    """(slot, value) the fact fills, the value in lower case; None when it fills none."""
    words = unlabelled(text)
    for slot, pattern in _SLOTS:
        found = pattern.search(words if slot in ("home", "work") else words.lower())
        if found:
            value = next(v for v in found.groups() if v)
            return slot, re.sub(r"^(?:the|a|an) ", "", value.lower()).strip(" ,")
    return None


def given_up(text: str) -> str | None:
    """The value a change of mind leaves ("switched from vim", "no longer at Acme", "quit Acme"), lower case."""
    found = _FROM.search(unlabelled(text).lower())
    value = None if found is None else next(v for v in found.groups() if v)
    return None if value is None or value in STOP_WORDS else value


def substituted(old: str, new: str) -> bool:
    """Each text has a content word the other lacks ("a pottery class" / "a yoga class"): another fact."""
    a, b = set(tokens(unlabelled(old))) - _LIGHT, set(tokens(unlabelled(new))) - _LIGHT
    return bool(a - b) and bool(b - a)


def relation(old: str, new: str, score: float, threshold: float = SAME_THRESHOLD) -> Relation:
    """How the fact `new` stands to the fact `old` (dense cosine `score` between them)."""
    if subject_of(old) != subject_of(new):
        return Relation.DISTINCT
    a, b = slot_of(old), slot_of(new)
    left = given_up(new)
    if left is not None and a is not None and left in a[1].split():  # the value the old fact holds
        return Relation.SUPERSEDES
    if a is not None and b is not None and a[0] == b[0]:
        return Relation.SAME if a[1] == b[1] else Relation.SUPERSEDES
    if (a is None) != (b is None) or substituted(old, new):
        return Relation.DISTINCT
    if says_the_same(unlabelled(old), unlabelled(new), score, threshold):
        return Relation.SAME
    return Relation.DISTINCT

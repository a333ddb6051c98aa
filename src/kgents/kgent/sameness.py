"""When two statements say the same thing: the one rule behind dedup (`learn`) and consolidation (the dream).

The dense cosine alone cannot tell. The default embedder is static (a mean of token vectors), so a number, a
name or a day barely moves a text: "meeting with client number 1 is on friday" and "... number 2 ..." score
1.000, "I wake up at 6am" and "... at 8am" 1.000, "I moved to Berlin in 2019" and "... in 2021" 0.905, higher
than most labelled paraphrases (0.631-0.959). Merging those destroys distinct facts. So two texts say the same
thing only when all three hold:

1. their dense cosine (recall's score in dense mode) reaches SAME_THRESHOLD, the cut bench/extraction.py measures
   on tests/data/paraphrases.tsv among pairs that pass 2 and 3;
2. no specific is in one and not the other: a specific is a word with a digit ("2019", "6am", "hunter2"), a
   number word, a day, month or time of day, a negation ("not", "never", "don't": "I don't like type hints" is not
   "I like type hints", whatever the tags say), or a capitalised word (a name: "Anna", "Berlin", "Python") other
   than "I" and function words;
3. they share a content word, and the content words they share come in the same order ("tabs over spaces" is not
   "spaces over tabs", which the static model scores 1.000; "Why did you say that?" and "Do you remember what I
   like?", 0.6 on function words alone, share none).

A pair kept apart by mistake stays two entries, and nothing is lost; a pair merged by mistake loses a fact. The
rule errs to the first side ("At work I use Python" is not merged with "I use Python at work").
"""

from __future__ import annotations

import re
from functools import lru_cache

from kgents.resonance.lexical import STOP_WORDS, tokens

SAME_THRESHOLD = 0.57
"""Dense cosine from which two texts that pass 2 and 3 say the same thing. bench/extraction.py on
tests/data/paraphrases.tsv (40 labelled pairs), default embedder (minilm-mpnet-static-384): of the 17 pairs that
pass 2 and 3, same meaning scored 0.631-0.971 and different meaning 0.038-0.498, the best cut 0.565 (all right);
the near-template pairs 2 and 3 tell apart score 0.750-1.000, above every cut a paraphrase would pass."""

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_NUMBERS = """zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen
    seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million
    billion first second third fourth fifth sixth seventh eighth ninth tenth twice thrice dozen half
    quarter"""
NUMBER_WORDS = frozenset(_NUMBERS.split())
_CALENDAR = """monday tuesday wednesday thursday friday saturday sunday weekday weekend january february march april
    june
    july august september october november december today tomorrow yesterday tonight morning afternoon evening
    night noon midnight"""
CALENDAR = frozenset(_CALENDAR.split())
_NEGATIONS = "not no never nor t none nothing nobody neither without"
NEGATIONS = frozenset(_NEGATIONS.split())
"""Negations as the tokeniser sees them ("don't" is "don" and "t")."""
_DISCOURSE = "please actually honestly maybe perhaps also usually generally really well yes ok okay hey hi"
NOT_NAMES = STOP_WORDS | frozenset(_DISCOURSE.split())
"""Capitalised words that are not names: function words and the discourse words a sentence starts with."""


def _is_specific(word: str) -> bool:
    lower = word.lower()
    if any(c.isdigit() for c in word) or lower in NUMBER_WORDS or lower in NEGATIONS:
        return True
    if lower.removesuffix("s") in CALENDAR:
        return True
    return word[:1].isupper() and lower not in NOT_NAMES


@lru_cache(maxsize=4096)
def _words(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """(every word lowercased, the specific ones lowercased)."""
    found = _WORD.findall(text)
    return frozenset(w.lower() for w in found), frozenset(w.lower() for w in found if _is_specific(w))


def differing_specifics(a: str, b: str) -> frozenset[str]:
    """Specifics (lowercased) that one text has and the other has not: any one makes them different facts."""
    words_a, specific_a = _words(a)
    words_b, specific_b = _words(b)
    return (words_a ^ words_b) & (specific_a | specific_b)


def same_order(a: str, b: str) -> bool:
    """Whether the two texts share a content word (stem), and those they share come in the same order in both."""
    stems_a, stems_b = list(dict.fromkeys(tokens(a))), list(dict.fromkeys(tokens(b)))
    shared = set(stems_a) & set(stems_b)
    return bool(shared) and [s for s in stems_a if s in shared] == [s for s in stems_b if s in shared]


def same_facts(a: str, b: str) -> bool:
    """Conditions 2 and 3: nothing but the cosine keeps the two texts from saying the same thing."""
    return not differing_specifics(a, b) and same_order(a, b)


def says_the_same(a: str, b: str, score: float, threshold: float = SAME_THRESHOLD) -> bool:
    """Whether text `b`, with dense cosine `score` to text `a`, says the same thing as `a`."""
    return score >= threshold and same_facts(a, b)

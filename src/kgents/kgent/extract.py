"""Learning from what is said, without an LLM: small pure functions over one user message.

`extract(text)` says whether a message states a preference, value, behaviour or pattern of the user, and if so
returns a `Statement`: the kind, the user's own words (kept as evidence), the subject it is about, its polarity
(a like or a dislike), a confidence from its hedges, whether it announces a change of mind, and the personality
axes it leans towards. Questions, greetings and small talk give None.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from kgents.garden.model import EntryType

POSITIVE_TAG = "likes"
NEGATIVE_TAG = "dislikes"
LEARNED_TAG = "kgent"
"""Every entry the K-gent plants carries this tag."""

HEDGED = 0.4
PLAIN = 0.55
STRONG = 0.7

_QUESTION_START = re.compile(
    r"^(what|why|how|when|where|who|which|can|could|would|will|do|does|did|is|are|am|should|shall|have|has)\b"
)
_SMALL_TALK = re.compile(
    r"^(hi|hello|hey|yo|thanks|thank you|cheers|good (morning|afternoon|evening|night)|bye|goodbye|see you|ok|okay|"
    r"cool|nice|great|lol|haha|sure|yes|no|yep|nope|hmm+|how are you|nice to meet you|sounds good|got it)\b"
)
_CHANGE = re.compile(
    r"\b(actually|i've come round to|i have come round to|i've come around to|i changed my mind|i've changed my mind|"
    r"no longer|not anymore|any more|these days|i used to|i now|now i)\b"
)
_REQUEST = re.compile(
    r"\b(?:i want|i need|i'd like|i would like|i'd love|i wish) (?:you|u)\b|^(?:please )?never ?mind\b|\bgo ahead\b"
)
"""A request to the agent ("I want you to split this", "Never mind that last part"): never a preference."""
_POINTING = frozenset({"that", "this", "it", "those", "these", "you", "your", "yours", "them", "how", "when", "what"})
"""A subject starting with one of these points at what was just said ("I love that idea"), not at a taste."""
_HEDGES = re.compile(
    r"\b(maybe|perhaps|probably|i think|i guess|i suppose|sometimes|kind of|sort of|somewhat|a bit|not sure|"
    r"might|occasionally|i suspect)\b"
)
_STRONG = re.compile(r"\b(really|strongly|definitely|absolutely|hate|love|always|never|can't stand|must|insist)\b")

# (entry type, polarity, pattern): the first match wins; the named group `s` is the subject.
_RULES: tuple[tuple[EntryType, int, re.Pattern[str]], ...] = tuple(
    (kind, polarity, re.compile(pattern))
    for kind, polarity, pattern in (
        (EntryType.PREFERENCE, 1, r"\bi(?: would|'d) rather (?P<s>.+)"),
        (EntryType.PREFERENCE, 1, r"\bi(?:'ve| have)? come (?:round|around) to (?P<s>.+)"),
        (EntryType.PREFERENCE, 1, r"\bi (?:much |really |strongly |generally )?prefer (?P<s>.+)"),
        (
            EntryType.PREFERENCE,
            -1,
            r"\bi (?:no longer|don't|do not|don't really|never) (?:like|enjoy|want|prefer) (?P<s>.+)",
        ),
        (EntryType.PREFERENCE, -1, r"\bi (?:really )?(?:dislike|hate|detest|can't stand|cannot stand) (?P<s>.+)"),
        (EntryType.PREFERENCE, -1, r"\bi(?:'m| am) not a (?:big )?fan of (?P<s>.+)"),
        (EntryType.PREFERENCE, 1, r"\bi(?:'m| am) (?:a (?:big |huge )?fan of|fond of|into) (?P<s>.+)"),
        (EntryType.PREFERENCE, 1, r"\bi (?:really |do |quite |also )?(?:like|love|enjoy|want|appreciate) (?P<s>.+)"),
        (EntryType.PREFERENCE, -1, r"^(?:please )?(?:never|don't|do not|avoid|stop) (?P<s>.+)"),
        (EntryType.PREFERENCE, 1, r"^(?:please )?always (?P<s>.+)"),
        (EntryType.VALUE, 1, r"\bi (?:really |deeply )?(?:value|care (?:a lot )?about|believe in) (?P<s>.+)"),
        (EntryType.VALUE, 1, r"^(?P<s>.+?) (?:matters|is important|is what matters) to me\b"),
        (EntryType.VALUE, 1, r"\bit(?:'s| is) important to me (?:that|to) (?P<s>.+)"),
        (EntryType.VALUE, 1, r"\bi (?:don't|do not) compromise on (?P<s>.+)"),
        (EntryType.PATTERN, 1, r"\bi (?:tend to|usually|often|typically|generally|mostly|keep) (?P<s>.+)"),
        (EntryType.PATTERN, 1, r"\b(?:whenever|every time) i (?P<s>.+)"),
        (EntryType.PATTERN, -1, r"\bi (?:rarely|seldom|hardly ever) (?P<s>.+)"),
        (EntryType.BEHAVIOR, 1, r"\bi always (?P<s>.+)"),
        (EntryType.BEHAVIOR, -1, r"\bi (?:never|don't ever|do not ever) (?P<s>.+)"),
        (EntryType.BEHAVIOR, 1, r"\bi (?:write|start|begin|test|review|use|run|name|document|commit|work) (?P<s>.+)"),
    )
)

# axis → (words leaning to its low pole, words leaning to its high pole)
_AXIS_WORDS: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "aesthetic": (
        ("minimal", "simple", "small", "concise", "short", "plain", "lean", "terse"),
        ("ornate", "elaborate", "rich", "decorated", "verbose", "baroque", "fancy"),
    ),
    "categorical": (
        ("concrete", "example", "examples", "specific", "practical", "hands-on"),
        ("abstract", "theory", "principle", "principles", "general", "conceptual"),
    ),
    "gratitude": (
        ("useful", "utility", "efficient", "pragmatic", "results"),
        ("meaning", "meaningful", "craft", "beauty", "sacred", "care"),
    ),
    "heterarchy": (
        ("hierarchy", "authority", "rules", "process", "approval"),
        ("peer", "peers", "collaborate", "collaboration", "pairing", "flat", "together"),
    ),
    "generativity": (
        ("comments", "documentation", "docs", "docstrings", "notes", "explain"),
        ("generate", "prototype", "prototypes", "build", "code", "experiment", "ship"),
    ),
    "joy": (
        ("serious", "formal", "austere", "strict", "quiet"),
        ("fun", "playful", "humor", "humour", "jokes", "emoji", "play"),
    ),
}
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "to",
        "of",
        "and",
        "or",
        "in",
        "on",
        "at",
        "for",
        "with",
        "my",
        "me",
        "i",
        "it",
        "is",
        "be",
        "that",
        "this",
        "about",
        "over",
        "than",
        "very",
        "really",
        "more",
        "less",
        "please",
        "so",
        "just",
        "some",
        "any",
        "all",
        "by",
        "as",
        "from",
    ]
)


@dataclass(frozen=True, slots=True)
class Statement:
    """One thing the user said about themselves."""

    kind: EntryType
    content: str
    """The user's own sentence, tidied (the entry's content and its first evidence)."""
    subject: str
    polarity: int
    confidence: float
    change_of_mind: bool = False
    affinities: Mapping[str, float] = field(default_factory=dict)

    @property
    def tags(self) -> tuple[str, ...]:
        return (LEARNED_TAG, POSITIVE_TAG if self.polarity > 0 else NEGATIVE_TAG)


def normalise(text: str) -> str:
    """Lower case, straight quotes, single spaces, no closing punctuation."""
    clean = text.replace("\u2019", "'").replace("\u2018", "'").strip().lower()
    return re.sub(r"\s+", " ", clean).rstrip(".!;: ")


def is_question(text: str) -> bool:
    clean = normalise(text)
    return text.strip().endswith("?") or bool(_QUESTION_START.match(clean))


def is_small_talk(text: str) -> bool:
    clean = normalise(text)
    return bool(_SMALL_TALK.match(clean)) and len(clean.split()) <= 6


def confidence_for(text: str) -> float:
    """Hedges lower it, emphasis raises it."""
    clean = normalise(text)
    if _HEDGES.search(clean):
        return HEDGED
    if _STRONG.search(clean):
        return STRONG
    return PLAIN


def subject_words(subject: str) -> frozenset[str]:
    return frozenset(w for w in re.findall(r"[a-z0-9+#-]+", subject.lower()) if w not in _STOP and len(w) > 1)


def overlap(a: str, b: str) -> float:
    """Jaccard overlap of the content words of two subjects (0 when either has none)."""
    wa, wb = subject_words(a), subject_words(b)
    if not wa or not wb:
        return 0.0
    return len(wa & wb) / len(wa | wb)


def affinities_for(subject: str, polarity: int) -> dict[str, float]:
    """Axis → where on it (0 low pole, 1 high pole) the statement leans; a dislike leans the other way."""
    words = subject_words(subject)
    found: dict[str, float] = {}
    for axis, (low, high) in _AXIS_WORDS.items():
        lean = len(words & set(high)) - len(words & set(low))
        if lean:
            toward_high = (lean > 0) == (polarity > 0)
            found[axis] = 1.0 if toward_high else 0.0
    return found


def tidy(text: str) -> str:
    """The user's sentence as content: one line, trimmed, with a capital first letter and no trailing space."""
    one = re.sub(r"\s+", " ", text.strip())
    return one[:1].upper() + one[1:] if one else one


def extract(text: str) -> Statement | None:
    """The statement `text` makes about the user, or None (a question, small talk, or nothing recognised)."""
    if not text.strip() or is_question(text) or is_small_talk(text):
        return None
    clean = normalise(text)
    if _REQUEST.search(clean):
        return None
    clean = re.sub(r"^(actually|honestly|well|so|ok|okay|also|and|but|oh)[, ]+", "", clean)
    clean = re.sub(r"^(?:i think|i guess|maybe|perhaps)[, ]+", "", clean)
    for kind, polarity, pattern in _RULES:
        match = pattern.search(clean)
        if match is None:
            continue
        subject = re.split(r"[.!?;]", match.group("s"))[0].strip(" ,")
        subject = re.split(r"\b(?:but|because|since)\b", subject)[0].strip(" ,") or subject
        if len(subject_words(subject)) == 0 or subject.split()[0].strip(",") in _POINTING:
            return None
        prefer_over = re.search(r"^(?P<a>.+?) (?:over|to|rather than|instead of) (?P<b>.+)$", subject)
        if kind is EntryType.PREFERENCE and prefer_over and "prefer" in clean:
            subject = prefer_over.group("a")
        return Statement(
            kind=kind,
            content=tidy(text),
            subject=subject,
            polarity=polarity,
            confidence=confidence_for(text),
            change_of_mind=bool(_CHANGE.search(clean)) or bool(_CHANGE.search(normalise(text))),
            affinities=affinities_for(subject, polarity),
        )
    return None


def contradicts(statement: Statement, subject: str, polarity: int, threshold: float = 0.5) -> bool:
    """The statement says the opposite about (nearly) the same subject."""
    return statement.polarity != polarity and overlap(statement.subject, subject) >= threshold

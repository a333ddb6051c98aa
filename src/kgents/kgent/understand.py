"""What one user message is, before anything is stored: a lasting memory or an episode, and of whom.

- `lasting`: the learner (`memorable`) finds that a sentence tells something lasting about the speaker or their
  life, or today's rules (`extract`) read a preference, value, habit or standing instruction. Anything else the
  user says (not a question, not small talk) is kept as an *episode*: the user's words, tagged `episode`, at a low
  confidence, never cited as a fact; it fades with the dream's decay unless repeated.
- `subject`: whom the fact is about. None for the speaker; "sister" for "My sister lives in Oslo", "anna" for
  "Anna works at the bank". A fact about someone else is never the user's preference: it is stored as a fact
  (INSIGHT) tagged `subject:<who>`, whatever liking it states ("My sister loves jazz" is not a like of the user).
"""

from __future__ import annotations

from dataclasses import dataclass

from kgents.kgent.cues import sentences
from kgents.kgent.extract import Statement, extract, is_question, is_small_talk
from kgents.kgent.memorable import chance as noisy_or
from kgents.kgent.memorable import sentence_scores, shipped
from kgents.kgent.subject import subject_of

EPISODE_TAG = "episode"
"""What the user said that carries no lasting fact (kept, told apart by this tag and a low confidence)."""
FACT_TAG = "fact"
"""A lasting fact about the user or their people that no preference rule reads (type INSIGHT)."""
SUBJECT_PREFIX = "subject:"
"""`subject:<who>` on a fact about someone other than the user."""


@dataclass(frozen=True, slots=True)
class Reading:
    text: str
    lasting: bool
    statement: Statement | None
    """Today's rules' reading, when they read one about the user."""
    subject: str | None
    """None: the speaker; else whom the fact is about (lower case)."""
    score: float
    """The learner's probability that some sentence tells something lasting (`memorable.score`)."""


def read(text: str) -> Reading | None:
    """The reading of a user message; None for small talk, an empty line or nothing but questions (nothing to
    keep). The questions of a message that also tells something are left out of the reading."""
    if not text.strip() or is_small_talk(text):
        return None
    said = [s for s in sentences(text) if not is_question(s)]
    if not said:
        return None
    weights = shipped()
    scored = sentence_scores(" ".join(said), weights)
    chance = noisy_or(scored)
    subject = subject_of(max(scored, key=lambda sp: sp[1])[0])
    statement = extract(" ".join(said))
    if subject is not None:
        statement = None  # a taste of someone else is a fact about them, not the user's preference
    return Reading(text, chance >= weights.threshold or statement is not None, statement, subject, chance)

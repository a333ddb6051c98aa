"""The words of time that `when.py`'s grammar is built from: months, weekdays, seasons, counts."""

from __future__ import annotations

_MONTH_NAMES = [
    *("january", "february", "march", "april", "may", "june"),
    *("july", "august", "september", "october", "november", "december"),
]
MONTHS: dict[str, int] = {name: i for i, name in enumerate(_MONTH_NAMES, start=1)}
MONTHS.update({name[:3]: i for i, name in enumerate(_MONTH_NAMES, start=1)})
MONTHS["sept"] = 9
MONTH = r"(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")"
"""A month's name or its abbreviation (one group)."""
UNAMBIGUOUS_MONTHS = frozenset({"january", "february", "july", "september", "october", "november", "december"})
"""Month names that are no common English word or first name: a time even without a preposition."""
AMBIGUOUS_MONTHS = frozenset({"march", "april", "may", "june", "august"})

_DAY_NAMES = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: dict[str, int] = {name: i for i, name in enumerate(_DAY_NAMES)}
WEEKDAY = r"(" + "|".join(_DAY_NAMES) + r")"
WEEKDAY_WORDS = "|".join(_DAY_NAMES)

SEASON_MONTH = {"spring": 3, "summer": 6, "fall": 9, "autumn": 9, "winter": 12}
"""The first month of each season (meteorological, northern hemisphere)."""
SEASONS = r"(spring|summer|fall|autumn|winter)"

_COUNTS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "couple": 2,
    "few": 3,
    "several": 3,
}
NUMBER = r"(\d{1,3}|" + "|".join(sorted(_COUNTS, key=len, reverse=True)) + r"|a\s+couple(?:\s+of)?|a\s+few)"
"""A count: digits, a number word, "a couple (of)", "a few" (one group)."""


def number(word: str) -> int:
    """The count a `NUMBER` match names."""
    text = word.lower().split()
    if text[0].isdigit():
        return int(text[0])
    return _COUNTS[text[1] if text[0] == "a" and len(text) > 1 else text[0]]

"""Time in the question: the range of `observed_at` a query names ("last week", "in May 2023", "3 days ago",
"since March", "between August 11 and August 15 2023"), read relative to when it is asked. Pure functions, no I/O.

A small grammar of our own rather than the dateparser library, chosen on tests/data/time_queries.tsv (bench/
recall.py prints both scores): dateparser takes 0.8 s to import and 1-11 ms a query (a recall's whole budget is
3 ms), it returns a point where a question names a range ("in May" is a month, "last week" a week), and it reads
"May I ask" and "a second opinion" as times. The rules here read a month name only where a preposition, a day or
a year says it is one ("in May", "May 3", "May 2023"; never "May I" or "the March for Science"), a season only
with a word that makes it a time ("last summer", "in the spring", "summer 2021"; never "spring cleaning"), a
weekday only after on/last/this/next or before a time of day or the end of the clause. Calendar days are those of
the asking time's time zone; weeks start on Monday; a date without a year is its latest occurrence not after the
asking day. "Recently" and "lately" name no range (too vague to cut or lift by).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from kgents.synapse.when_rules import Anchor, Clock, anchors
from kgents.synapse.when_words import MONTH, NUMBER, SEASONS, WEEKDAY_WORDS, WEEKDAYS, number


@dataclass(frozen=True, slots=True)
class TimeSpan:
    """A range of observed_at, half-open: [start, end); None is an open end."""

    phrase: str
    """The words of the query it was read from."""
    start: datetime | None
    end: datetime | None
    at: tuple[int, int] = (0, 0)
    """Where the phrase is in the query (start, end offsets)."""

    def contains(self, when: datetime) -> bool:
        return (self.start is None or when >= self.start) and (self.end is None or when < self.end)

    def to_dict(self) -> dict[str, Any]:
        return {
            "phrase": self.phrase,
            "after": None if self.start is None else self.start.isoformat(),
            "before": None if self.end is None else self.end.isoformat(),
        }


Range = tuple[datetime | None, datetime | None]


_BEFORE = re.compile(r"\b(since|after|before|until|till|by|up\s+to)\s+$", re.IGNORECASE)
_LEADING = re.compile(r"(since|after|before|until|till)\s", re.IGNORECASE)
_RELATIVE = re.compile(
    rf"\b(?:(?:the|a)\s+|{NUMBER}\s+)?(day|week|weekend|month|{WEEKDAY_WORDS})s?\s+(before|after)\s+$", re.IGNORECASE
)
_BETWEEN = re.compile(r"\b(between|from)\s+$", re.IGNORECASE)
_AND = re.compile(r"^\s*(?:and|to|until|till|through|-)\s*$", re.IGNORECASE)


_MAYBE = re.compile(
    rf"\d|\b(?:{MONTH[1:-1]}|{WEEKDAY_WORDS}|{SEASONS[1:-1]}|today|tonight|yesterday|night|morning|afternoon|evening"
    r"|minute|hour|day|week|month|year|ago|'\d)",
    re.IGNORECASE,
)


def read_time(query: str, now: datetime) -> TimeSpan | None:
    """The range of observed_at the query names, relative to `now` (timezone-aware), or None. Where it names
    several, a range ("between A and B") wins, then the first with a year ("last Friday, on 23 January 2022": the
    date), then the first."""
    if now.tzinfo is None:
        raise ValueError("the asking time must be timezone-aware")
    if not _MAYBE.search(query):
        return None  # most queries name no time: one search instead of thirty
    clock = Clock(now)
    found = anchors(query, clock)
    for first, second in itertools.pairwise(found):
        opener = _BETWEEN.search(query[: first.at[0]])
        if opener is not None and _AND.match(query[first.at[1] : second.at[0]]):
            start = first.start
            if first.yearless is not None and second.yearless is None:
                start = clock.at(date(second.start.year, *first.yearless))
            at = (opener.start(), second.at[1])
            return TimeSpan(query[at[0] : at[1]], start, second.end, at)
    if not found:
        return None
    return _modified(query, clock, next((a for a in found if a.absolute), found[0]))


def _modified(query: str, clock: Clock, anchor: Anchor) -> TimeSpan:
    """The anchor as the words before it change it: "since", "before", "the week before", "two days after"."""
    start: datetime | None = anchor.start
    end: datetime | None = anchor.end
    head, begin = query[: anchor.at[0]], anchor.at[0]
    if (rel := _RELATIVE.search(head)) is not None:
        n = number(rel[1]) if rel[1] else 1
        start, end = _relative(clock, rel[2].lower(), rel[3].lower(), anchor.start, anchor.end, n)
        begin = rel.start()
    elif (op := _BEFORE.search(head) or _LEADING.match(query, anchor.at[0])) is not None:
        word = op[1].lower()
        start, end = {"since": (start, None), "after": (end, None), "before": (None, start)}.get(word, (None, end))
        begin = min(begin, op.start())
    return TimeSpan(query[begin : anchor.at[1]], start, end, (begin, anchor.at[1]))


def _relative(c: Clock, unit: str, way: str, start: datetime, end: datetime, n: int = 1) -> Range:
    """ "the week before <date>", "two days after <date>" and their kin: `n` units before the anchor's start or
    after its end (a weekday: the nearest such day before or after it)."""
    if unit in WEEKDAYS:
        target = WEEKDAYS[unit]
        if way == "after":
            return c.days(end.date() + timedelta(days=(target - end.date().weekday()) % 7))
        return c.days(start.date() - timedelta(days=(start.date().weekday() - target) % 7 or 7))
    if unit == "weekend":
        if way == "after":
            return c.days(end.date() + timedelta(days=(5 - end.date().weekday()) % 7), 2)
        return c.days(start.date() - timedelta(days=(start.date().weekday() - 5) % 7 or 7), 2)
    length = timedelta(days={"day": 1, "week": 7, "month": 30}[unit])
    if way == "before":
        return start - n * length, start - (n - 1) * length
    return end + (n - 1) * length, end + n * length


def without(query: str, span: TimeSpan) -> str:
    """The query with the time phrase taken out (what the signals search for)."""
    return f"{query[: span.at[0]].rstrip()} {query[span.at[1] :].lstrip()}".strip()

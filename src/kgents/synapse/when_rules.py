"""The rules of `when.py`'s grammar: each a pattern and what the words it matches mean as a range of days,
relative to the asking time (`Clock`). `anchors` finds every time phrase of a query; `when.read_time` combines
them with the words before them ("since", "the week before", "between ... and ...")."""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from kgents.synapse.when_words import (
    AMBIGUOUS_MONTHS,
    MONTH,
    MONTHS,
    NUMBER,
    SEASON_MONTH,
    SEASONS,
    UNAMBIGUOUS_MONTHS,
    WEEKDAY,
    WEEKDAYS,
    number,
)


@dataclass(frozen=True, slots=True)
class Anchor:
    start: datetime
    end: datetime
    at: tuple[int, int]
    yearless: tuple[int, int] | None = None
    """(month, day) of a date read without its year: a range may give it the year of its other end."""
    absolute: bool = False
    """Read with its year (not relative to the asking time)."""


class Clock:
    """The asking time and the calendar arithmetic of its time zone."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.today = now.date()

    def at(self, day: date) -> datetime:
        return datetime.combine(day, time(), tzinfo=self.now.tzinfo)

    def days(self, first: date, count: int = 1) -> tuple[datetime, datetime]:
        return self.at(first), self.at(first + timedelta(days=count))

    def week(self, day: date) -> tuple[datetime, datetime]:
        return self.days(day - timedelta(days=day.weekday()), 7)

    def month(self, year: int, month: int, first: int = 1, last: int | None = None) -> tuple[datetime, datetime]:
        end = add_months(date(year, month, 1), 1) if last is None else date(year, month, last)
        return self.at(date(year, month, first)), self.at(end)

    def year(self, year: int, count: int = 1) -> tuple[datetime, datetime]:
        return self.at(date(year, 1, 1)), self.at(date(year + count, 1, 1))

    def latest(self, month: int, day: int = 1) -> date:
        """The latest (month, day) not after today (the day clamped to the month's length)."""
        for year in (self.today.year, self.today.year - 1):
            found = date(year, month, min(day, calendar.monthrange(year, month)[1]))
            if found <= self.today:
                return found
        return found


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


Handler = Callable[[re.Match[str], Clock], "tuple[datetime, datetime] | None"]
_RULES: list[tuple[re.Pattern[str], Handler]] = []


def _rule(pattern: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _RULES.append((re.compile(pattern, re.IGNORECASE), handler))
        return handler

    return register


_PREP = r"(?:(?:in|on|during|of|from|for|at|throughout)\s+)?"
_YEAR = r"((?:19|20)\d\d)(?![-/]\d)"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"


def _date(c: Clock, year: str | None, month: str, day: str) -> tuple[datetime, datetime] | None:
    m, d = MONTHS[month.lower().rstrip(".")], int(day)
    y = int(year) if year else None
    try:
        found = date(y, m, d) if y else c.latest(m, d)
    except ValueError:
        return None
    if not y and found.day != d:
        return None
    return c.days(found)


@_rule(r"\b(?:on\s+)?(\d{4})-(\d{1,2})-(\d{1,2})\b")
def _iso(m: re.Match[str], c: Clock) -> tuple[datetime, datetime] | None:
    try:
        return c.days(date(int(m[1]), int(m[2]), int(m[3])))
    except ValueError:
        return None


@_rule(rf"\b(?:on\s+)?(?:the\s+)?{_DAY}\s+(?:of\s+)?{MONTH}\.?(?:,?\s*{_YEAR})?\b")
def _day_month(m: re.Match[str], c: Clock) -> tuple[datetime, datetime] | None:
    return _date(c, m[3], m[2], m[1])


@_rule(rf"\b(?:on\s+)?{MONTH}\.?\s+{_DAY}(?![\d:])\b(?:,?\s*{_YEAR}\b)?")
def _month_day(m: re.Match[str], c: Clock) -> tuple[datetime, datetime] | None:
    return _date(c, m[3], m[1], m[2])


_PART = r"(early|mid|late|the\s+(?:beginning|start|end|middle)\s+of)"
_PARTS = {"early": (1, 11), "beginning": (1, 11), "start": (1, 11), "mid": (11, 21), "middle": (11, 21)}


@_rule(rf"\b{_PREP}(?:{_PART}[\s-]+)?{MONTH}\.?(?:,?\s*{_YEAR}\b|\s+of\s+{_YEAR}\b)")
def _month_year(m: re.Match[str], c: Clock) -> tuple[datetime, datetime] | None:
    return _month_part(c, int(m[3] or m[4]), MONTHS[m[2].lower().rstrip(".")], m[1])


def _month_part(c: Clock, year: int, month: int, part: str | None) -> tuple[datetime, datetime]:
    if not part:
        return c.month(year, month)
    first, last = _PARTS.get(part.split()[-2] if part.startswith("the") else part.lower(), (21, None))
    return c.month(year, month, first, last)


_MONTH_CONTEXT = r"(in|during|since|before|after|until|till|from|between|and|to|through|throughout|last|this|next)"


@_rule(rf"\b(?:{_MONTH_CONTEXT}\s+)?(?:{_PART}[\s-]+)?{MONTH}\b(?!\s*\d)")
def _month(m: re.Match[str], c: Clock) -> tuple[datetime, datetime] | None:
    word, name = (m[1] or "").lower(), m[3].lower()
    if not word and not m[2] and name not in UNAMBIGUOUS_MONTHS:
        return None  # "May I ask", "the March for Science", "April said"
    if name not in UNAMBIGUOUS_MONTHS and name not in AMBIGUOUS_MONTHS:
        return None  # an abbreviation ("Mar", "Aug") needs a day or a year
    month = MONTHS[name]
    latest = c.latest(month)
    year = latest.year
    if word == "last" and latest.month == c.today.month and latest.year == c.today.year:
        year -= 1
    elif word in ("this", "next"):
        year = c.today.year + (1 if word == "next" and month <= c.today.month else 0)
    return _month_part(c, year, month, m[2])


@_rule(r"\b(?:the\s+)?(?:(19|20)|')?(\d)0'?s\b")
def _decade(m: re.Match[str], c: Clock) -> tuple[datetime, datetime] | None:
    if not m.group(0).lower().startswith("the") and not m[1]:
        return None
    century = int(m[1]) * 100 if m[1] else (1900 if int(m[2]) >= 3 else 2000)
    return c.year(century + int(m[2]) * 10, 10)


@_rule(
    rf"\b(?:(?:in|during|of|from|for|throughout|since|before|after|until|till)\s+(?:the\s+year\s+)?|the\s+year\s+){_YEAR}\b"
)
def _year(m: re.Match[str], c: Clock) -> tuple[datetime, datetime] | None:
    return c.year(int(m[1]))


@_rule(r"\b(?:(earlier|later)\s+)?today\b|\btonight\b|\bthis\s+(?:morning|afternoon|evening)\b")
def _today(m: re.Match[str], c: Clock) -> tuple[datetime, datetime] | None:
    return c.days(c.today)


@_rule(r"\b(?:the\s+day\s+before\s+)?yesterday(?:\s+(?:morning|afternoon|evening|night))?\b|\blast\s+night\b")
def _yesterday(m: re.Match[str], c: Clock) -> tuple[datetime, datetime] | None:
    back = 2 if m.group(0).lower().startswith("the") else 1
    return c.days(c.today - timedelta(days=back))


@_rule(r"\bthe\s+other\s+day\b")
def _other_day(m: re.Match[str], c: Clock) -> tuple[datetime, datetime] | None:
    return c.days(c.today - timedelta(days=7), 7)


@_rule(rf"\b{NUMBER}\s+(day|week|month|year)s?\s+ago\b")
def _ago(m: re.Match[str], c: Clock) -> tuple[datetime, datetime] | None:
    n, unit = number(m[1]), m[2].lower()
    if unit == "day":
        return c.days(c.today - timedelta(days=n))
    if unit == "week":
        return c.week(c.today - timedelta(weeks=n))
    if unit == "month":
        back = add_months(c.today, -n)
        return c.month(back.year, back.month)
    return c.year(c.today.year - n)


_SPANS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(7)}


@_rule(
    rf"\b(?:(?:in|over|during|within|for)\s+)?(?:(the)\s+)?(?:(last|past|previous)\s+)(?:{NUMBER}\s+)?"
    r"(minute|hour|day|week|month|year)s?\b(?!\s+ago)"
)
def _rolling(m: re.Match[str], c: Clock) -> tuple[datetime, datetime] | None:
    the, word, count, unit = m[1], m[2].lower(), m[3], m[4].lower()
    if not the and not count and word == "last":
        return None  # "last week" is the calendar week: _calendar
    n = number(count) if count else 1
    if unit in _SPANS:
        return c.now - n * _SPANS[unit], c.now
    months = n * (12 if unit == "year" else 1)
    return datetime.combine(add_months(c.now.date(), -months), c.now.timetz()), c.now


@_rule(
    r"\b(?:(earlier)\s+)?(?:(?:over|during|in|on|at)\s+)?(last|this|next|the)\s+(week|month|year|weekend)\b"
    r"(?!\s+(?:before|after)\b)"
)
def _calendar(m: re.Match[str], c: Clock) -> tuple[datetime, datetime] | None:
    earlier, word, unit = m[1], m[2].lower(), m[3].lower()
    if word == "the" and unit != "weekend":
        return None
    step = {"last": -1, "this": 0, "next": 1, "the": 0}[word]
    if unit == "weekend":
        saturday = c.today + timedelta(days=5 - c.today.weekday())
        if (word in ("last", "the") and c.today.weekday() < 5) or word == "last":
            saturday -= timedelta(days=7)
        return c.days(saturday + timedelta(weeks=step if word == "next" else 0), 2)
    if unit == "week":
        found = c.week(c.today + timedelta(weeks=step))
    elif unit == "month":
        first = add_months(c.today.replace(day=1), step)
        found = c.month(first.year, first.month)
    else:
        found = c.year(c.today.year + step)
    return (found[0], c.now) if earlier and step == 0 else found


@_rule(
    rf"\b(?:(on|last|this|next|past)\s+)?{WEEKDAY}(?:(\s+(?:morning|afternoon|evening|night))|(?=\s*(?:[?.!,;]|$)))?"
)
def _weekday(m: re.Match[str], c: Clock) -> tuple[datetime, datetime] | None:
    word = (m[1] or "").lower()
    if not word and m.lastindex == 2 and m.group(0) == m[2] and not _ends_clause(m):
        return None  # "the Friday deploy freeze"
    target = WEEKDAYS[m[2].lower()]
    monday = c.today - timedelta(days=c.today.weekday())
    if word in ("this", "next"):
        return c.days(monday + timedelta(days=target + (7 if word == "next" else 0)))
    back = (c.today.weekday() - target) % 7 or 7
    return c.days(c.today - timedelta(days=back))


def _ends_clause(m: re.Match[str]) -> bool:
    rest = m.string[m.end() :]
    return not rest.strip() or rest.lstrip()[0] in "?.!,;" or bool(_TIME_OF_DAY.match(rest))


_TIME_OF_DAY = re.compile(r"\s+(?:morning|afternoon|evening|night)")


@_rule(rf"\b(?:(last|this|next|past)\s+|(?:in|during|over)\s+(the\s+)?){SEASONS}\b(?!\s+(?:of\s+)?\d)")
def _season(m: re.Match[str], c: Clock) -> tuple[datetime, datetime] | None:
    word, season = (m[1] or ("the" if m[2] else "in")).lower(), m[3].lower()
    if word == "in" and season == "fall":
        return None  # "in fall" is rare as a time, common as a verb ("fell in fall ...")
    first = SEASON_MONTH[season]
    ranges = [_season_range(c, y, first) for y in range(c.today.year - 2, c.today.year + 2)]
    if word in ("last", "past"):
        return [r for r in ranges if r[1] <= c.now][-1]
    if word == "next":
        return next(r for r in ranges if r[0] > c.now)
    if word == "this":
        return next((r for r in ranges if r[0] <= c.now < r[1]), _season_range(c, c.today.year, first))
    return [r for r in ranges if r[0] <= c.now][-1]


@_rule(rf"\b{_PREP}(?:the\s+)?{SEASONS}\s+(?:of\s+)?{_YEAR}\b")
def _season_year(m: re.Match[str], c: Clock) -> tuple[datetime, datetime] | None:
    return _season_range(c, int(m[2]), SEASON_MONTH[m[1].lower()])


def _season_range(c: Clock, year: int, first_month: int) -> tuple[datetime, datetime]:
    begin = date(year, first_month, 1)
    return c.at(begin), c.at(add_months(begin, 3))


_ABSOLUTE = frozenset({_iso, _day_month, _month_day, _month_year, _decade, _year, _season_year})


def anchors(query: str, clock: Clock) -> list[Anchor]:
    """Every time phrase of the query, leftmost-longest, none overlapping."""
    found: list[Anchor] = []
    for pattern, handler in _RULES:
        for m in pattern.finditer(query):
            if (span := handler(m, clock)) is not None:
                yearless = None
                if handler in (_day_month, _month_day) and not m[3]:
                    day, month = (m[1], m[2]) if handler is _day_month else (m[2], m[1])
                    yearless = (MONTHS[month.lower().rstrip(".")], int(day))
                absolute = handler in _ABSOLUTE and yearless is None
                found.append(Anchor(span[0], span[1], (m.start(), m.end()), yearless, absolute))
    found.sort(key=lambda a: (a.at[0] - a.at[1], a.at[0]))  # the longest first, then the leftmost
    kept: list[Anchor] = []
    for a in found:
        if all(a.at[1] <= k.at[0] or a.at[0] >= k.at[1] for k in kept):
            kept.append(a)
    return sorted(kept, key=lambda a: a.at[0])

"""Time in the question, scored: the labelled queries of tests/data/time_queries*.tsv through our grammar
(`kgents.synapse.when.read_time`) and, where it is installed, through the dateparser library (the alternative
it was chosen over), each query resolved to a range and compared with the range it means.

    python bench/time_labels.py        (bench/recall.py prints the same table)

dateparser gives a point, not a range: it is read as the period dateparser reports for the words it found (its
`DateDataParser.get_date_data(...).period`: day, week, month or year), so "in May" is the month and "last week"
the week (Monday to Monday) of the date it names. That is the fairest reading of it we know.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kgents.synapse.when import read_time

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
FILES = ("time_queries.tsv", "time_queries_late.tsv")
DEFAULT_ASKED_AT = datetime(2024, 5, 15, 10, tzinfo=UTC)

Range = tuple[datetime | None, datetime | None] | None
Reader = Callable[[str, datetime], Range]


@dataclass(frozen=True, slots=True)
class Labelled:
    query: str
    asked_at: datetime
    want: Range


def _when(text: str) -> datetime | None:
    if text == "-":
        return None
    found = datetime.fromisoformat(text)
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def load(path: Path) -> list[Labelled]:
    out = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith(("#", "query\t")):
            continue
        query, asked, start, end = line.split("\t")
        want = None if start == "none" else (_when(start), _when(end))
        out.append(Labelled(query, DEFAULT_ASKED_AT if asked == "." else _when(asked) or DEFAULT_ASKED_AT, want))
    return out


def ours(query: str, asked_at: datetime) -> Range:
    span = read_time(query, asked_at)
    return None if span is None else (span.start, span.end)


def dateparser_reader() -> tuple[Reader, float] | None:
    """dateparser as a reader, and the seconds its import took; None where it is not installed."""
    began = time.perf_counter()
    try:
        from dateparser.date import DateDataParser
        from dateparser.search import search_dates
    except ImportError:
        return None
    imported = time.perf_counter() - began

    def read(query: str, asked_at: datetime) -> Range:
        settings = {"RELATIVE_BASE": asked_at.replace(tzinfo=None), "PREFER_DATES_FROM": "past"}
        found = search_dates(query, languages=["en"], settings=settings)  # type: ignore[arg-type]
        if not found:
            return None
        words, when = found[0]
        period = DateDataParser(languages=["en"], settings=settings).get_date_data(words).period or "day"  # type: ignore[arg-type]
        day = when.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=UTC)
        if period == "week":
            start = day - timedelta(days=day.weekday())
            return start, start + timedelta(days=7)
        if period == "month":
            start = day.replace(day=1)
            return start, (start + timedelta(days=32)).replace(day=1)
        if period == "year":
            return day.replace(month=1, day=1), day.replace(year=day.year + 1, month=1, day=1)
        return day, day + timedelta(days=1)

    return read, imported


@dataclass(frozen=True, slots=True)
class Result:
    name: str
    right: int
    total: int
    false_times: int
    """Queries naming no time that were read as one."""
    p50_ms: float

    @property
    def share(self) -> float:
        return self.right / self.total if self.total else 0.0


def score(name: str, reader: Reader, labelled: list[Labelled]) -> Result:
    right = false_times = 0
    took = []
    for item in labelled:
        began = time.perf_counter()
        got = reader(item.query, item.asked_at)
        took.append((time.perf_counter() - began) * 1000)
        right += got == item.want
        false_times += item.want is None and got is not None
    return Result(name, right, len(labelled), false_times, statistics.median(took))


def results() -> tuple[list[Result], float | None]:
    """Both readers on each labelled file, and dateparser's import seconds (None: not installed)."""
    other = dateparser_reader()
    out = []
    for file in FILES:
        labelled = load(DATA / file)
        out.append(score(f"grammar ({file})", ours, labelled))
        if other is not None:
            out.append(score(f"dateparser ({file})", other[0], labelled))
    return out, None if other is None else other[1]


if __name__ == "__main__":
    found, imported = results()
    for r in found:
        line = f"{r.right}/{r.total} = {100 * r.share:.1f} %  false times {r.false_times}  p50 {r.p50_ms:.3f} ms"
        print(f"{r.name:40s} {line}")
    print("dateparser import:", "not installed" if imported is None else f"{imported:.2f} s")

"""Time in the question (`kgents.synapse.when`): the labelled queries of tests/data/time_queries*.tsv resolve to
the ranges they mean, and words that only look like times ("May I ask", "a second opinion") are none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from kgents.synapse.when import read_time, without

DATA = Path(__file__).parent / "data"
NOW = datetime(2024, 5, 15, 10, tzinfo=UTC)  # a Wednesday


def _when(text: str) -> datetime | None:
    if text == "-":
        return None
    found = datetime.fromisoformat(text)
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def labelled(name: str) -> list[tuple[str, datetime, tuple[datetime | None, datetime | None] | None]]:
    out = []
    for line in (DATA / name).read_text().splitlines():
        if not line.strip() or line.startswith(("#", "query\t")):
            continue
        query, asked, start, end = line.split("\t")
        want = None if start == "none" else (_when(start), _when(end))
        out.append((query, NOW if asked == "." else _when(asked) or NOW, want))
    return out


@pytest.mark.parametrize("name", ["time_queries.tsv", "time_queries_late.tsv"])
def test_at_least_nine_in_ten_labelled_queries_resolve_to_their_range(name: str) -> None:
    rows = labelled(name)
    assert len(rows) >= 40
    wrong = []
    for query, asked, want in rows:
        span = read_time(query, asked)
        got = None if span is None else (span.start, span.end)
        if got != want:
            wrong.append((query, got, want))
    assert len(rows) - len(wrong) >= 0.9 * len(rows), wrong
    assert sum(w is None for _, _, w in rows) >= 10, "chances to read a time where there is none"


@pytest.mark.parametrize(
    "query",
    [
        "May I ask what you think?",
        "I need a second opinion",
        "spring cleaning tips",
        "What did April say?",
        "the March for Science",
        "what will I do with the summer dress",
        "I may go",
        "the Friday deploy freeze",
        "What did Melanie paint recently?",
    ],
)
def test_words_that_only_look_like_times_are_none(query: str) -> None:
    assert read_time(query, NOW) is None


def test_the_calendar_is_the_asking_times_own() -> None:
    tokyo = timezone(timedelta(hours=9))
    late = datetime(2024, 5, 15, 23, 30, tzinfo=tokyo)  # 14:30 UTC the same day; 00:30 in Tokyo is not yet here
    span = read_time("what did I say yesterday", late)
    assert span is not None and (span.start, span.end) == (
        datetime(2024, 5, 14, tzinfo=tokyo),
        datetime(2024, 5, 15, tzinfo=tokyo),
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        read_time("yesterday", datetime(2024, 5, 15))


def test_a_date_with_its_year_wins_over_words_relative_to_now() -> None:
    span = read_time("What did Joanna finish last Friday, on 23 January 2022?", NOW)
    assert span is not None and span.phrase == "on 23 January 2022" and span.start == datetime(2022, 1, 23, tzinfo=UTC)


def test_the_phrase_is_taken_out_of_what_is_searched() -> None:
    query = "What did I say about the deploy last week?"
    span = read_time(query, NOW)
    assert span is not None and span.phrase == "last week"
    assert without(query, span) == "What did I say about the deploy ?"
    assert span.to_dict() == {
        "phrase": "last week",
        "after": "2024-05-06T00:00:00+00:00",
        "before": "2024-05-13T00:00:00+00:00",
    }
    assert span.contains(datetime(2024, 5, 12, 23, tzinfo=UTC)) and not span.contains(datetime(2024, 5, 13, tzinfo=UTC))

"""How a recall reads its query before searching: the time it names (`when.py`), taken out of what the signals
search, and whether that time lifts the memories observed in it (a boost) or is the whole question ("what did I
say yesterday?": a filter). Pure functions, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from kgents.garden.filters import EntryFilter
from kgents.resonance.lexical import query_terms, term_id, tokens
from kgents.synapse.relevance import REQUEST_WORDS
from kgents.synapse.when import TimeSpan, read_time, without

REQUEST_TERMS = frozenset(term_id(w) for w in REQUEST_WORDS)


@dataclass(frozen=True, slots=True)
class Reading:
    """A query as read: `text` is what the signals search; `span` the time it names and `use` what is done with
    it: "boost", "filter", or "ignored" (the caller's filter bounds observed_at itself)."""

    text: str
    span: TimeSpan | None = None
    use: str | None = None

    @property
    def boost(self) -> TimeSpan | None:
        return self.span if self.use == "boost" else None

    def narrow(self, flt: EntryFilter) -> EntryFilter:
        """`flt`, bounded by the time named when that time is the whole question."""
        if self.span is None or self.use != "filter":
            return flt
        return replace(flt, observed_after=self.span.start, observed_before=self.span.end)

    def to_dict(self) -> dict[str, Any]:
        return {} if self.span is None else {"time": {**self.span.to_dict(), "use": self.use}}


def read(query: str, asked_at: datetime, flt: EntryFilter) -> Reading:
    """The query's time, relative to `asked_at`: a filter when nothing but request words is left without it,
    else a boost; ignored where `flt` bounds observed_at already (the caller chose the window)."""
    span = read_time(query, asked_at)
    if span is None:
        return Reading(query)
    rest = without(query, span)
    if flt.observed_after is not None or flt.observed_before is not None:
        return Reading(rest or query, span, "ignored")
    asks = {term_id(t) for t in tokens(rest)} - REQUEST_TERMS
    return Reading(rest if query_terms(rest) else query, span, "boost" if asks else "filter")

"""What `bench/faults.py` records: per fault one row (acknowledged, anchor, index, coherency, what a held-open
`Memory()` saw) and the claims checked; and how a write's outcome is read from what the caller was told."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

from bench.campaign import Claim
from rich.console import Console

from kgents.errors import BackendUnavailableError, KgentsError, NotIndexedError, OutcomeUnknownError

console = Console(stderr=True)

ACKNOWLEDGED, KEPT, IN_DOUBT, REFUSED = "acknowledged", "kept", "in doubt", "refused"
"""Done; done and kept but not searchable yet (`not_indexed`); unknown (`outcome_unknown`); not done."""


def outcome_of(error: BaseException | None) -> str:
    """What the caller was told became of a write."""
    if error is None:
        return ACKNOWLEDGED
    if isinstance(error, NotIndexedError):
        return KEPT
    if isinstance(error, OutcomeUnknownError):
        return IN_DOUBT
    if isinstance(error, BackendUnavailableError):
        return REFUSED
    if isinstance(error, KgentsError):
        return f"error {type(error).__name__}"
    return f"crash {type(error).__name__}"


def tally(counter: collections.Counter[str]) -> str:
    return ", ".join(f"{n} {what}" for what, n in sorted(counter.items())) or "none"


@dataclass
class Row:
    item: str
    fault: str
    acknowledged: str
    anchor: str
    index: str
    coherency: str
    memory_saw: str

    COLUMNS = ("item", "fault", "told the caller", "anchor", "index", "coherency", "held-open Memory saw")

    def cells(self) -> tuple[str, ...]:
        return (self.item, self.fault, self.acknowledged, self.anchor, self.index, self.coherency, self.memory_saw)


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)

    def row(self, row: Row) -> None:
        self.rows.append(row)
        line = f"  {row.fault}: told {row.acknowledged}; anchor {row.anchor}; index {row.index}"
        console.print(line, highlight=False)

    def claim(self, what: str, ok: bool, detail: str) -> None:
        self.claims.append(Claim(what, ok, detail))
        mark = "[green]ok[/]" if ok else "[red]FAILED[/]"
        console.print(f"  {mark} {what}: {detail}", highlight=False)

    def skipped(self, item: str, fault: str, why: str) -> None:
        self.rows.append(Row(item, fault, "skipped", why, "", "", ""))
        console.print(f"  [yellow]skipped[/] {fault}: {why}", highlight=False)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.claims)

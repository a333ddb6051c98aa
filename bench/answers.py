"""The K-gent's answers on LoCoMo (bench/recall.py's last table): each dev question asked through `KGent.answer`
in its conversation's persona, and each question of tests/data/never_said.tsv. Reported: the share of answers
whose citations hold an evidence turn, the share of never-said questions whose answer cites nothing, and the
citations per answer; beside the same answers without the relevance bar (what the chat did before: the five best
hits, whatever their score)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from rich.table import Table

from kgents.kgent.session import KGent
from kgents.memory.local import AsyncMemory
from kgents.soul.session import open_spark
from kgents.synapse.runtime import Synapse


class Asked(Protocol):
    conv: str
    text: str
    evidence: frozenset[str]


@dataclass(frozen=True, slots=True)
class Cited:
    name: str
    with_evidence: float
    """Share of the questions whose answer cites an evidence turn."""
    never_said_silent: float
    """Share of the never-said questions whose answer cites nothing."""
    per_answer: float
    """Citations per answer to the dev questions."""


async def cited(
    synapse: Synapse,
    dia: dict[Any, str],
    questions: list[Any],
    never: list[tuple[str, str]],
    when: dict[str, datetime],
) -> list[Cited]:
    spark = await open_spark(synapse.settings)
    memories: dict[str, AsyncMemory] = {}
    out = []
    try:
        for name, bar in (("answers with the relevance bar (now)", True), ("the five best hits (before)", False)):
            hits = held = 0
            for q in questions:
                kgent = KGent(_memory(memories, synapse, spark, q.conv), relevance_bar=bar)
                reply = await kgent.answer(q.text, asked_at=when[q.conv])
                held += bool({dia[e.id] for e in reply.cited} & q.evidence)
                hits += len(reply.cited)
            silent = 0
            for conv, text in never:
                kgent = KGent(_memory(memories, synapse, spark, conv), relevance_bar=bar)
                silent += not (await kgent.answer(text, asked_at=when[conv])).cited
            out.append(Cited(name, held / len(questions), silent / len(never), hits / len(questions)))
    finally:
        for memory in memories.values():
            await memory.close()
        await spark.close()
    return out


def _memory(memories: dict[str, AsyncMemory], synapse: Synapse, spark: Any, conv: str) -> AsyncMemory:
    if conv not in memories:
        memories[conv] = AsyncMemory.shared(synapse, spark, f"locomo-{conv}")
    return memories[conv]


def table(rows: list[Cited]) -> Table:
    out = Table(title="The K-gent's answers (KGent.answer) to the dev questions and to never-said ones")
    for name in ("answers", "cite an evidence turn", "never-said: cite nothing", "citations per answer"):
        out.add_column(name, justify="right")
    for r in rows:
        shares = f"{100 * r.with_evidence:.1f} %", f"{100 * r.never_said_silent:.1f} %"
        out.add_row(r.name, *shares, f"{r.per_answer:.2f}")
    return out

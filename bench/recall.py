"""Recall on real conversations (LoCoMo): dense, lexical and hybrid recall in one run, the calibrated cut, the
time in the question, the K-gent's cited answers, plus the paraphrase bench.

Every turn of a conversation is planted as one memory of one persona (content "<speaker>: <text>", observed at
its session's date plus its index in seconds), the relay indexes them (embedded SQLite + Qdrant Edge, a
temporary KGENTS_HOME), and each question is asked in that persona, a day after the conversation's last session
(`asked_at`). Scored as the data set's README says: recall_any@k (an evidence turn among the top k) for k = 5,
10, 20, and recall_all@10, overall and per category; plus search p50/p95 (query embedding included) and plant +
index time. Then, for the default (hybrid):
- the calibrated cut: the share of questions whose evidence is in the top 10 that keep an evidence hit at or
  above each `min_score`, the share of tests/data/never_said.tsv's questions (about things never said in these
  conversations; ours, not the data set's) that return nothing, and the share of bench/paraphrase.py's queries
  (no word shared with their memory) whose memory survives;
- time in the question: tests/data/time_queries*.tsv through our grammar and through dateparser when installed;
- the K-gent's answers (`KGent.answer`): how often they cite an evidence turn, and how often a never-said
  question cites nothing.
No language model anywhere. The data is read by path and never copied. `--graph` searches an HNSW graph built
after planting (the default index searches these few thousand points exactly) on float vectors; `--int8` builds it
on int8 copies of them, as new collections do since issue 17 (kept because recall held).

    python bench/recall.py ../shared/data/locomo-dev [--modes dense,lexical,hybrid] [--pools 100]
        [--context 0.3] [--no-paraphrase] [--no-answers] [--graph] [--int8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

import answers
import paraphrase
import time_labels
from kgents.config import Settings
from kgents.garden.service import PersonaGarden
from kgents.resonance.edge import EdgeIndex
from kgents.stats import percentile
from kgents.synapse.fusion import CONTEXT_SHARE, RecallMode
from kgents.synapse.recall import HybridRecall
from kgents.synapse.relay import RelayConfig
from kgents.synapse.relevance import DEFAULT_MIN_SCORE
from kgents.synapse.runtime import Synapse, open_synapse

GRAPH_KB = 64
"""--graph: the engine's indexing and full-scan thresholds, low enough for a graph over the data set's few thousand
turns that its searches walk (below the full-scan threshold a segment is scanned, graph or not)."""
KS = (5, 10, 20)
CUTS = tuple(sorted({0.05, 0.08, 0.1, 0.12, DEFAULT_MIN_SCORE, 0.15}))
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
NEVER_SAID = Path(__file__).resolve().parent.parent / "tests" / "data" / "never_said.tsv"
console = Console(width=150)


@dataclass(frozen=True, slots=True)
class Turn:
    conv: str
    dia_id: str
    content: str
    observed_at: datetime | None


@dataclass(frozen=True, slots=True)
class Question:
    conv: str
    category: int
    text: str
    evidence: frozenset[str]


@dataclass(slots=True)
class Score:
    hits: dict[str, list[bool]] = field(default_factory=lambda: defaultdict(list))
    latencies_ms: list[float] = field(default_factory=list)
    evidence_scores: list[float] = field(default_factory=list)
    """Per question with evidence in the top 10: the best score of an evidence hit there (the calibrated cut)."""

    def add(self, category: int, ranked: list[str], evidence: frozenset[str]) -> None:
        for key in ("all", CATEGORIES[category]):
            for k in KS:
                self.hits[f"{key}@any{k}"].append(bool(evidence & set(ranked[:k])))
            self.hits[f"{key}@all10"].append(evidence <= set(ranked[:10]))

    def rate(self, key: str) -> float:
        values = self.hits[key]
        return 100.0 * sum(values) / len(values) if values else 0.0


def session_date(raw: str) -> datetime | None:
    """The session's date as the data set writes it ("1:56 pm on 8 May, 2023"), read as UTC: the observed_at."""
    try:
        return datetime.strptime(raw, "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)
    except ValueError:
        return None


def load(folder: Path) -> tuple[list[Turn], list[Question]]:
    turns = [
        Turn(r["conv"], r["dia_id"], f"{r['speaker']}: {r['text']}", session_date(r["date_time"]))
        for r in map(json.loads, (folder / "turns.jsonl").read_text().splitlines())
    ]
    questions = [
        Question(r["conv"], int(r["category"]), r["question"], frozenset(r["evidence"]))
        for r in map(json.loads, (folder / "questions.jsonl").read_text().splitlines())
        if r["evidence"]
    ]
    return turns, questions


def never_said() -> list[tuple[str, str]]:
    """(conversation, question) of tests/data/never_said.tsv."""
    rows = [line.split("\t", 1) for line in NEVER_SAID.read_text().splitlines() if line and not line.startswith("#")]
    return [(conv, text) for conv, text in rows]


def persona_of(conv: str) -> str:
    return f"locomo-{conv}"


def observed(turn: Turn) -> datetime | None:
    """The session's date plus the turn's index in seconds: a session's turns happen in that order."""
    index = int(turn.dia_id.rsplit(":", 1)[1])
    return None if turn.observed_at is None else turn.observed_at + timedelta(seconds=index)


def asked_at(turns: list[Turn]) -> dict[str, datetime]:
    """Each conversation's questions are asked a day after its last session."""
    last: dict[str, datetime] = {}
    for t in turns:
        if (when := observed(t)) is not None and (t.conv not in last or when > last[t.conv]):
            last[t.conv] = when
    return {conv: when + timedelta(days=1) for conv, when in last.items()}


async def plant_all(synapse: Synapse, turns: list[Turn]) -> tuple[dict[Any, str], float]:
    """Plant every turn and drain the relay; the entry id → dia_id map and the seconds it took."""
    began = time.perf_counter()
    by_conv: dict[str, list[Turn]] = defaultdict(list)
    for t in turns:
        by_conv[t.conv].append(t)
    dia: dict[Any, str] = {}
    for conv, conv_turns in by_conv.items():
        garden = PersonaGarden(synapse.store, persona_of(conv))
        entries = [garden.new_entry(t.content, "INSIGHT", observed_at=observed(t)) for t in conv_turns]
        for entry, turn in zip(entries, conv_turns, strict=True):
            dia[entry.id] = turn.dia_id
        await garden.plant_many(entries)
    await synapse.relay(RelayConfig(batch_size=512)).drain(timeout_s=3_600)
    return dia, time.perf_counter() - began


async def ask_all(
    recall: HybridRecall,
    questions: list[Question],
    dia: dict[Any, str],
    mode: RecallMode,
    label: str,
    when: dict[str, datetime],
) -> Score:
    score = Score()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(label, total=len(questions))
        for q in questions:
            began = time.perf_counter()
            hits = await recall.recall(persona_of(q.conv), q.text, max(KS), mode=mode, asked_at=when[q.conv])
            score.latencies_ms.append((time.perf_counter() - began) * 1000)
            ranked = [dia[h.entry.id] for h in hits]
            score.add(q.category, ranked, q.evidence)
            kept = [h.score for h in hits[:10] if dia[h.entry.id] in q.evidence]
            if kept:
                score.evidence_scores.append(max(kept))
            progress.advance(task)
    return score


async def never_said_tops(recall: HybridRecall, when: dict[str, datetime]) -> list[float]:
    """The best score of each never-said question (0.0: no hit at all)."""
    tops = []
    for conv, text in never_said():
        hits = await recall.recall(persona_of(conv), text, 10, asked_at=when[conv])
        tops.append(hits[0].score if hits else 0.0)
    return tops


PARAPHRASE_PERSONA = "paraphrase"


async def plant_paraphrase(synapse: Synapse) -> dict[Any, int]:
    """bench/paraphrase.py's garden as one persona's memories: entry id → its index in GARDEN."""
    garden = PersonaGarden(synapse.store, PARAPHRASE_PERSONA)
    entries = [garden.new_entry(text, "PREFERENCE") for text in paraphrase.GARDEN]
    await garden.plant_many(entries)
    return {e.id: i for i, e in enumerate(entries)}


async def paraphrase_ranks(
    recall: HybridRecall, targets: dict[Any, int], mode: RecallMode
) -> list[list[tuple[int, float]]]:
    """For QUERIES, then HOLDOUT: each target's rank (51 when not in the top 50) and score (0.0 then)."""
    out = []
    for queries in (paraphrase.QUERIES, paraphrase.HOLDOUT):
        found = []
        for query, target in queries:
            hits = await recall.recall(PARAPHRASE_PERSONA, query, len(paraphrase.GARDEN), mode=mode)
            order = [targets[h.entry.id] for h in hits]
            rank = order.index(target) + 1 if target in order else 51
            found.append((rank, hits[rank - 1].score if rank <= len(hits) else 0.0))
        out.append(found)
    return out


def paraphrase_scores(ranked: list[list[tuple[int, float]]]) -> list[float]:
    """recall@1, recall@3 and MRR on QUERIES, then on HOLDOUT."""
    out: list[float] = []
    for found in ranked:
        r = np.asarray([rank for rank, _ in found])
        out += [float((r == 1).mean()), float((r <= 3).mean()), float((1.0 / r).mean())]
    return out


def paraphrase_table(rows: dict[str, list[float]]) -> Table:
    out = Table(title="bench/paraphrase.py's garden through recall (queries share no word with their memory)")
    out.add_column("system")
    for name in ("r@1", "r@3", "MRR", "holdout r@1", "holdout r@3", "holdout MRR"):
        out.add_column(name, justify="right")
    for name, values in rows.items():
        out.add_row(name, *(f"{v:.3f}" for v in values))
    return out


def table(results: dict[str, Score], plant_s: float, n_turns: int) -> Table:
    out = Table(title=f"LoCoMo recall ({n_turns:,} turns planted and indexed in {plant_s:.1f} s)")
    out.add_column("system")
    out.add_column("slice")
    for k in KS:
        out.add_column(f"any@{k}", justify="right")
    out.add_column("all@10", justify="right")
    out.add_column("search p50/p95 ms", justify="right")
    for name, score in results.items():
        p50, p95 = percentile(score.latencies_ms, 0.5) or 0.0, percentile(score.latencies_ms, 0.95) or 0.0
        for key in ("all", *CATEGORIES.values()):
            n = len(score.hits[f"{key}@all10"])
            row = [f"{score.rate(f'{key}@any{k}'):.1f}" for k in KS] + [f"{score.rate(f'{key}@all10'):.1f}"]
            timing = f"{p50:.2f} / {p95:.2f}" if key == "all" else ""
            out.add_row(name if key == "all" else "", f"{key} ({n})", *row, timing)
    return out


def calibration_table(score: Score, tops: list[float], para: list[list[tuple[int, float]]]) -> Table:
    kept = np.asarray(score.evidence_scores)
    empty = np.asarray(tops)
    para_scores = np.asarray([s for found in para for rank, s in found if rank <= 10])
    n_para = sum(len(found) for found in para)
    out = Table(title="The calibrated cut (hybrid): min_score against what it keeps and what it empties")
    for name in ("min_score", "evidence kept (target ≥ 95 %)", "never-said empty (≥ 80 %)", "paraphrase kept"):
        out.add_column(name, justify="right")
    for cut in CUTS:
        label = f"{cut:.2f}" + (" (default: chat, MCP)" if cut == DEFAULT_MIN_SCORE else "")
        out.add_row(
            label,
            f"{100 * (kept >= cut).mean():.1f} % of {len(kept)}",
            f"{100 * (empty < cut).mean():.1f} % of {len(empty)}",
            f"{100 * (para_scores >= cut).sum() / n_para:.1f} % of {n_para}",
        )
    return out


def time_table() -> Table:
    found, imported = time_labels.results()
    note = "dateparser not installed" if imported is None else f"dateparser imported in {imported:.2f} s"
    out = Table(title=f"Time in the question: labelled queries resolved to the range they mean ({note})")
    for name in ("reader (file)", "resolved (target ≥ 90 %)", "times read where none is", "p50 ms"):
        out.add_column(name, justify="right")
    for r in found:
        out.add_row(r.name, f"{r.right}/{r.total} = {100 * r.share:.1f} %", str(r.false_times), f"{r.p50_ms:.3f}")
    return out


async def measure(args: argparse.Namespace, turns: list[Turn], questions: list[Question]) -> None:
    when = asked_at(turns)
    results: dict[str, Score] = {}
    para: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as home:
        index = None
        if args.graph or args.int8:  # an index with a graph even at this size (and int8 copies if asked)
            index = EdgeIndex.open(
                Path(home) / "index", indexing_threshold_kb=GRAPH_KB, full_scan_kb=GRAPH_KB, int8=args.int8
            )
        synapse = await open_synapse(Settings(home=Path(home), persona="bench"), index=index)
        try:
            targets = await plant_paraphrase(synapse)
            dia, plant_s = await plant_all(synapse, turns)
            if index is not None:
                console.print(f"the graph: {await synapse.build_graph(now=True)}")
            pool = int(args.pools.split(",")[0])
            for mode in (RecallMode(m) for m in args.modes.split(",")):
                pools = [int(p) for p in args.pools.split(",")] if mode is RecallMode.HYBRID else [pool]
                for p in pools:
                    for c in [float(x) for x in args.context.split(",")] if mode is RecallMode.HYBRID else [0.0]:
                        label = mode.value + ("" if p == pool else f" pool {p}")
                        if mode is RecallMode.HYBRID and c != CONTEXT_SHARE:
                            label += f" neighbours x{c:g}"
                        elif mode is RecallMode.HYBRID and p == pool:
                            label += " (the default)"
                        recall = HybridRecall(
                            synapse.store, synapse.queue, synapse.index, synapse.embedders, pool=p, context=c
                        )
                        results[label] = await ask_all(recall, questions, dia, mode, label, when)
                        para[label] = paraphrase_scores(await paraphrase_ranks(recall, targets, mode))
            for depth in (int(d) for d in args.depths.split(",") if d):
                label = f"hybrid, rows of the first {depth}"
                deep = HybridRecall(synapse.store, synapse.queue, synapse.index, synapse.embedders, depth=depth)
                results[label] = await ask_all(deep, questions, dia, RecallMode.HYBRID, label, when)
            plain = HybridRecall(synapse.store, synapse.queue, synapse.index, synapse.embedders, prefer=False)
            label = "hybrid, no person or time preference"
            results[label] = await ask_all(plain, questions, dia, RecallMode.HYBRID, label, when)
            default = synapse.recall()
            score = await ask_all(default, questions, dia, RecallMode.HYBRID, "the default again", when)
            tops = await never_said_tops(default, when)
            para_ranked = await paraphrase_ranks(default, targets, RecallMode.HYBRID)
            cited = None if args.no_answers else await answers.cited(synapse, dia, questions, never_said(), when)
        finally:
            await synapse.close()
    console.print(table(results, plant_s, len(turns)))
    console.print(paraphrase_table(para))
    console.print(calibration_table(score, tops, para_ranked))
    console.print(time_table())
    if cited is not None:
        console.print(answers.table(cited))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="the LoCoMo folder (turns.jsonl, questions.jsonl)")
    parser.add_argument("--modes", default="dense,lexical,hybrid")
    parser.add_argument("--pools", default="100", help="candidate pool depth(s) of each signal")
    parser.add_argument("--context", default=f"{CONTEXT_SHARE}", help="neighbouring-turn shares for the hybrid")
    parser.add_argument("--depths", default="", help="also: the hybrid reading this many candidates' rows (e.g. 50,75)")
    parser.add_argument("--no-paraphrase", action="store_true", help="skip bench/paraphrase.py at the end")
    parser.add_argument("--no-answers", action="store_true", help="skip the K-gent's cited answers")
    parser.add_argument("--graph", action="store_true", help="search an HNSW graph built after planting")
    parser.add_argument("--int8", action="store_true", help="the graph on int8 copies of the vectors (implies --graph)")
    args = parser.parse_args()
    turns, questions = load(args.data)
    await measure(args, turns, questions)
    if not args.no_paraphrase:
        sys.stdout.flush()
        process = await asyncio.create_subprocess_exec(sys.executable, str(Path(__file__).with_name("paraphrase.py")))
        await process.wait()


if __name__ == "__main__":
    asyncio.run(main())

"""Recall on real conversations (LoCoMo): dense, lexical and hybrid recall in one run, plus the paraphrase bench.

Every turn of a conversation is planted as one memory of one persona (content "<speaker>: <text>"), the relay
indexes them (embedded SQLite + Qdrant Edge, a temporary KGENTS_HOME), and each question is asked in that
persona. Scored as the data set's README says: recall_any@k (an evidence turn among the top k) for k = 5, 10,
20, and recall_all@10, overall and per category; plus search p50/p95 (query embedding included) and plant +
index time. No language model anywhere. The data is read by path and never copied.

    python bench/recall.py ../shared/data/locomo-dev [--modes dense,lexical,hybrid] [--fusion rrf,weighted]
        [--pools 100] [--no-paraphrase]
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
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

import paraphrase
from kgents.config import Settings
from kgents.garden import PersonaGarden
from kgents.resonance.embedders import DEFAULT_EMBEDDER
from kgents.resonance.lexical import STOP_WORDS
from kgents.stats import percentile
from kgents.synapse.fusion import CONTEXT_SHARE, Fusion, RecallMode
from kgents.synapse.recall import HybridRecall
from kgents.synapse.relay import RelayConfig
from kgents.synapse.runtime import Synapse, open_synapse

KS = (5, 10, 20)
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
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


def persona_of(conv: str) -> str:
    return f"locomo-{conv}"


def observed(turn: Turn) -> datetime | None:
    """The session's date plus the turn's index in seconds: a session's turns happen in that order."""
    index = int(turn.dia_id.rsplit(":", 1)[1])
    return None if turn.observed_at is None else turn.observed_at + timedelta(seconds=index)


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


@dataclass(frozen=True, slots=True)
class Extras:
    """The experiments beyond fusion (measured, see the report): each off by default."""

    maxsim: float = 0.0
    """Weight of token-level MaxSim (static token vectors) added to the fused score of the top RERANK."""
    dense_content_words: bool = False
    """Embed only the question's content words (question and stop words dropped) for the dense side."""


RERANK = 50


@lru_cache(maxsize=2)
def unit_table(embedder: Any) -> Any:
    return embedder._table / np.maximum(np.linalg.norm(embedder._table, axis=1, keepdims=True), 1e-9)


def maxsim(embedder: Any, query: str, docs: list[str]) -> list[float]:
    """Mean over the query's tokens of the best cosine to any token of the document (static token vectors)."""
    table = unit_table(embedder)
    q_ids = [i for i in embedder.token_ids([query])[0]]
    q_ids = [
        i
        for i, t in zip(q_ids, embedder._tokenizer.decode_batch([[i] for i in q_ids]), strict=True)
        if t.strip().lower() not in STOP_WORDS
    ] or q_ids
    if not q_ids:
        return [0.0] * len(docs)
    q = table[q_ids]
    out = []
    for ids in embedder.token_ids(docs):
        out.append(float((q @ table[ids].T).max(axis=1).mean()) if ids else 0.0)
    return out


async def ask_all(
    recall: HybridRecall,
    questions: list[Question],
    dia: dict[Any, str],
    mode: RecallMode,
    label: str,
    extras: Extras = Extras(),
) -> Score:
    score = Score()
    static = getattr(recall.embedders(DEFAULT_EMBEDDER), "inner", recall.embedders(DEFAULT_EMBEDDER))
    depth = RERANK if extras.maxsim else max(KS)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(label, total=len(questions))
        for q in questions:
            began = time.perf_counter()
            text = q.text
            if extras.dense_content_words and mode is RecallMode.DENSE:
                text = " ".join(w for w in q.text.split() if w.lower().strip("?,.!'") not in STOP_WORDS) or q.text
            hits = await recall.recall(persona_of(q.conv), text, depth, mode=mode)
            scored = [(dia[h.entry.id], h.score) for h in hits]
            if extras.maxsim:
                sims = maxsim(static, q.text, [h.entry.content for h in hits])
                scored = sorted(
                    ((d, s + extras.maxsim * m) for (d, s), m in zip(scored, sims, strict=True)), key=lambda x: -x[1]
                )
            ranked = [d for d, _ in scored]
            score.latencies_ms.append((time.perf_counter() - began) * 1000)
            score.add(q.category, ranked, q.evidence)
            progress.advance(task)
    return score


PARAPHRASE_PERSONA = "paraphrase"


async def plant_paraphrase(synapse: Synapse) -> dict[Any, int]:
    """bench/paraphrase.py's garden as one persona's memories: entry id → its index in GARDEN."""
    garden = PersonaGarden(synapse.store, PARAPHRASE_PERSONA)
    entries = [garden.new_entry(text, "PREFERENCE") for text in paraphrase.GARDEN]
    await garden.plant_many(entries)
    return {e.id: i for i, e in enumerate(entries)}


async def paraphrase_scores(
    recall: HybridRecall, targets: dict[Any, int], mode: RecallMode, extras: Extras = Extras()
) -> list[float]:
    """recall@1, recall@3 and MRR on QUERIES, then on HOLDOUT (a target not in the top 50 ranks as 51)."""
    static = getattr(recall.embedders(DEFAULT_EMBEDDER), "inner", recall.embedders(DEFAULT_EMBEDDER))
    out: list[float] = []
    for queries in (paraphrase.QUERIES, paraphrase.HOLDOUT):
        ranks = []
        for query, target in queries:
            hits = await recall.recall(PARAPHRASE_PERSONA, query, len(paraphrase.GARDEN), mode=mode)
            scored = [(targets[h.entry.id], h.score) for h in hits]
            if extras.maxsim:
                sims = maxsim(static, query, [h.entry.content for h in hits])
                scored = sorted(
                    ((t, sc + extras.maxsim * m) for (t, sc), m in zip(scored, sims, strict=True)), key=lambda x: -x[1]
                )
            order = [t for t, _ in scored]
            ranks.append(order.index(target) + 1 if target in order else 51)
        r = np.asarray(ranks)
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


System = tuple[str, RecallMode, Fusion, int, float, float]


def systems(args: argparse.Namespace) -> list[System]:
    out: list[System] = []
    pools = [int(p) for p in args.pools.split(",")]
    for mode in (RecallMode(m) for m in args.modes.split(",")):
        if mode is not RecallMode.HYBRID:
            out.append((mode.value, mode, Fusion.RRF, pools[0], 1.0, 0.0))
            continue
        for fusion in (Fusion(f) for f in args.fusion.split(",")):
            for w in (float(x) for x in args.dense_weights.split(",")):
                for c in (float(x) for x in args.coverage_powers.split(",")):
                    name = f"hybrid {fusion.value} pool {{}} dense x{w:g} coverage^{c:g}"
                    out.extend((name.format(p), mode, fusion, p, w, c) for p in pools)
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="the LoCoMo folder (turns.jsonl, questions.jsonl)")
    parser.add_argument("--modes", default="dense,lexical,hybrid")
    parser.add_argument("--fusion", default="weighted")
    parser.add_argument("--pools", default="100")
    parser.add_argument("--dense-weights", default="1.0", help="dense weight(s) of the fusion (lexical: 1)")
    parser.add_argument("--maxsim", default="", help="MaxSim weights to try on the hybrid (e.g. 0.2,0.5)")
    parser.add_argument("--context", default="0.1", help="neighbouring-turn shares to measure on the hybrid (0: none)")
    parser.add_argument("--dense-content-words", action="store_true", help="also: dense on content words only")
    parser.add_argument("--coverage-powers", default="3", help="power(s) of the lexical query coverage")
    parser.add_argument("--no-paraphrase", action="store_true")
    args = parser.parse_args()
    turns, questions = load(args.data)
    results: dict[str, Score] = {}
    with tempfile.TemporaryDirectory() as home:
        synapse = await open_synapse(Settings(home=Path(home), persona="bench"))
        try:
            targets = await plant_paraphrase(synapse)
            dia, plant_s = await plant_all(synapse, turns)
            para: dict[str, list[float]] = {}
            for name, mode, fusion, pool, weight, power in systems(args):
                recall = HybridRecall(
                    synapse.store,
                    synapse.queue,
                    synapse.index,
                    synapse.embedders,
                    pool=pool,
                    fusion=fusion,
                    dense_weight=weight,
                    coverage_power=power,
                    context=0.0,
                )
                results[name] = await ask_all(recall, questions, dia, mode, name)
                para[name] = await paraphrase_scores(recall, targets, mode)
            best = HybridRecall(synapse.store, synapse.queue, synapse.index, synapse.embedders, context=0.0)
            for w in (float(x) for x in args.maxsim.split(",") if x):
                label = f"hybrid + maxsim x{w:g}"
                results[label] = await ask_all(best, questions, dia, RecallMode.HYBRID, label, Extras(maxsim=w))
                para[label] = await paraphrase_scores(best, targets, RecallMode.HYBRID, Extras(maxsim=w))
            for c in (float(x) for x in args.context.split(",") if x and float(x)):
                label = f"hybrid + context x{c:g} (the default)" if c == CONTEXT_SHARE else f"hybrid + context x{c:g}"
                lifted = HybridRecall(synapse.store, synapse.queue, synapse.index, synapse.embedders, context=c)
                results[label] = await ask_all(lifted, questions, dia, RecallMode.HYBRID, label)
                para[label] = await paraphrase_scores(lifted, targets, RecallMode.HYBRID)
            if args.dense_content_words:
                label = "dense, content words"
                extras = Extras(dense_content_words=True)
                results[label] = await ask_all(best, questions, dia, RecallMode.DENSE, label, extras)
        finally:
            await synapse.close()
    console.print(table(results, plant_s, len(turns)))
    console.print(paraphrase_table(para))
    if not args.no_paraphrase:
        sys.stdout.flush()
        process = await asyncio.create_subprocess_exec(sys.executable, str(Path(__file__).with_name("paraphrase.py")))
        await process.wait()


if __name__ == "__main__":
    asyncio.run(main())

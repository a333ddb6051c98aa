"""What the K-gent learns from real conversation (issue 15 item 1), on a folder in the LoCoMo layout
(turns.jsonl, questions.jsonl, observations.jsonl; see its README):

- turn level: each turn's text read as the user's message; precision and recall of the turns kept as lasting
  memories against the memorable ones (cited by an observation), for the first-person-pronoun baseline, today's
  rules (`kgent.extract`), the learner (`kgent.understand.read`: what the K-gent keeps as lasting) and storing
  every turn;
- learn then recall: each conversation replayed through `KGent.observe` (one persona per conversation, the
  speaker's name as the label, the session's date as the observation time; `KGent.listen`: a transcript's
  turns, nothing answered, every turn kept), then each question recalled in
  that persona: recall_any@5/10/20 of the evidence turns among what was learned (an entry maps back to the turns
  it was planted or nurtured from), beside storing every turn (bench/recall.py's protocol, hybrid) and beside the
  lasting memories alone (episodes left out);
- the fact pairs (tests/data/fact_pairs.tsv): how often `change.relation` says what the pair is labelled.

    .venv/bin/python bench/learning.py ../shared/data/locomo-dev [--json] [--no-recall] [--convs 26,30]

No language model; the data is read by path, never copied, and nothing is fitted on it.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import re
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from kgents.config import Settings
from kgents.kgent.change import relation
from kgents.kgent.extract import extract
from kgents.kgent.memorable import _embedder
from kgents.kgent.session import KGent
from kgents.kgent.understand import EPISODE_TAG, read

sys.path.insert(0, str(Path(__file__).resolve().parent))
import recall as recall_bench

KS = (5, 10, 20)
PAIRS = Path(__file__).resolve().parents[1] / "tests" / "data" / "fact_pairs.tsv"
_FIRST_PERSON = re.compile(r"\b(i|i'm|i've|i'd|i'll|me|my|mine|myself|we|we're|we've|us|our|ours)\b", re.I)


@dataclass(frozen=True, slots=True)
class Row:
    conv: str
    dia_id: str
    speaker: str
    text: str
    date_time: str


def load(folder: Path) -> tuple[list[Row], set[tuple[str, str]]]:
    rows = [
        Row(r["conv"], r["dia_id"], r["speaker"], r["text"], r["date_time"])
        for r in map(json.loads, (folder / "turns.jsonl").read_text().splitlines())
    ]
    memorable = {
        (o["conv"], e)
        for o in map(json.loads, (folder / "observations.jsonl").read_text().splitlines())
        for e in o["evidence"]
    }
    return rows, memorable


def first_person(text: str) -> bool:
    return bool(_FIRST_PERSON.search(text.replace("\u2019", "'")))


def learner(text: str) -> bool:
    reading = read(text)
    return reading is not None and reading.lasting


LEARNERS = {
    "first-person pronoun": first_person,
    "today's rules (kgent.extract)": lambda text: extract(text) is not None,
    "the learner (kgent.understand)": learner,
    "store every turn": lambda text: True,
}


def turn_level(rows: list[Row], memorable: set[tuple[str, str]]) -> dict[str, tuple[float, float, int]]:
    """Learner → (precision, recall, kept)."""
    out = {}
    for name, keep in LEARNERS.items():
        kept = {(r.conv, r.dia_id) for r in rows if keep(r.text)}
        tp = len(kept & memorable)
        out[name] = (tp / len(kept) if kept else 0.0, tp / len(memorable), len(kept))
    return out


def alternatives(rows: list[Row], memorable: set[tuple[str, str]]) -> list[tuple[str, float, float, int]]:
    """Other designs, each fitted on tests/data/memorable.tsv only and scored here: (name, precision, recall, kept).
    The learner alone (every sentence, questions included; no rules) at several thresholds, the cues alone, one
    penalty for cues and embedding alike (L2 30, before the embedding had its own), and a message scored by its best
    sentence instead of all its sentences at once (noisy-or, what the K-gent does)."""
    from dataclasses import replace as with_

    from kgents.kgent.memorable import sentence_scores
    from train_memorable import EMBEDDING_L2, L2, table, train

    said = table()
    out = []
    designs = (
        ("cues + embedder", False, EMBEDDING_L2),
        ("cues + embedder, one L2", False, L2),
        ("cues alone", True, L2),
    )
    for name, cues_only, embedding_l2 in designs:
        weights = train(said, cues_only, L2, 0.5, embedding_l2)
        scored = [(r, [p for _, p in sentence_scores(r.text, weights)]) for r in rows]
        for threshold in (0.5, 0.7, 0.8, 0.9):
            w = with_(weights, threshold=threshold)
            kept = {(r.conv, r.dia_id) for r, ps in scored if max(ps) >= w.threshold}
            out.append((f"{name}, best sentence >= {threshold}", *_pr(kept, memorable)))
        for threshold in (0.7, 0.8, 0.81, 0.9):
            noisy = {(r.conv, r.dia_id) for r, ps in scored if 1 - float(np.prod([1 - p for p in ps])) >= threshold}
            out.append((f"{name}, noisy-or of the sentences >= {threshold}", *_pr(noisy, memorable)))
    return out


def _pr(kept: set[tuple[str, str]], memorable: set[tuple[str, str]]) -> tuple[float, float, int]:
    tp = len(kept & memorable)
    return (tp / len(kept) if kept else 0.0), tp / len(memorable), len(kept)


def pair_accuracy(path: Path = PAIRS) -> tuple[int, int, list[str]]:
    with path.open(encoding="utf-8") as f:
        pairs = [r for r in csv.reader(f, delimiter="\t") if r and not r[0].startswith("#")]
    wrong = []
    for old, new, want in pairs:
        v = np.asarray(_embedder().embed([old, new]), dtype=np.float64)
        cosine = float(v[0] @ v[1] / (np.linalg.norm(v[0]) * np.linalg.norm(v[1])))
        if (got := relation(old, new, cosine)).value != want:
            wrong.append(f"{old} | {new}: {got.value}, labelled {want}")
    return len(pairs) - len(wrong), len(pairs), wrong


async def replay(
    synapse: Any, spark: Any, rows: list[Row], chat: bool = False
) -> tuple[dict[Any, set[str]], set[Any], dict[str, int]]:
    """Each conversation through a K-gent in persona learned-<conv>: entry id → turns, the episode ids, actions."""
    from kgents.memory.local import AsyncMemory

    turns_of: dict[Any, set[str]] = defaultdict(set)
    episodes: set[Any] = set()
    actions: dict[str, int] = defaultdict(int)
    by_conv: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        by_conv[r.conv].append(r)
    for conv, conv_rows in by_conv.items():
        memory = AsyncMemory.shared(synapse, spark, f"learned-{conv}")
        kgent = KGent(memory)
        try:
            for r in conv_rows:
                when = recall_bench.observed(
                    recall_bench.Turn(conv, r.dia_id, "", recall_bench.session_date(r.date_time))
                )
                take = kgent.observe if chat else kgent.listen  # observe: the chat's way (questions answered)
                reply = await take(r.text, speaker=r.speaker, observed_at=when)
                actions[reply.learned.action.value if reply.learned else ("episode" if reply.kept else "nothing")] += 1
                if reply.kept is not None:
                    turns_of[reply.kept.id].add(r.dia_id)
                    if EPISODE_TAG in reply.kept.tags:
                        episodes.add(reply.kept.id)
                if reply.learned is not None and reply.learned.previous is not None:
                    turns_of[reply.kept.id if reply.kept else None] |= turns_of.get(reply.learned.previous.id, set())
        finally:
            await memory.close()
    return turns_of, episodes, actions


async def ask(
    synapse: Any,
    questions: list[Any],
    persona: str,
    turns_of: dict[Any, set[str]],
    when: dict[str, datetime],
    leave_out: set[Any] = frozenset(),  # type: ignore[assignment]
) -> dict[int, float]:
    """recall_any@k (%) of the questions asked in `persona`-<conv>."""
    recall = synapse.recall()
    hits_at: dict[int, list[bool]] = {k: [] for k in KS}
    for q in questions:
        depth = max(KS) if not leave_out else 100
        found = await recall.recall(f"{persona}-{q.conv}", q.text, depth, asked_at=when[q.conv])
        ranked = [h.entry.id for h in found if h.entry.id not in leave_out]
        for k in KS:
            got: set[str] = set().union(*(turns_of.get(i, set()) for i in ranked[:k]))
            hits_at[k].append(bool(got & q.evidence))
    return {k: 100.0 * sum(v) / len(v) for k, v in hits_at.items()}


async def learn_then_recall(folder: Path, rows: list[Row], chat: bool = False) -> dict[str, Any]:
    from kgents.soul.session import open_spark
    from kgents.synapse.relay import RelayConfig
    from kgents.synapse.runtime import open_synapse

    turns, questions = recall_bench.load(folder)
    convs = {r.conv for r in rows}
    turns = [t for t in turns if t.conv in convs]
    questions = [q for q in questions if q.conv in convs]
    when = recall_bench.asked_at(turns)
    with tempfile.TemporaryDirectory() as home:
        synapse = await open_synapse(Settings(home=Path(home), persona="bench"))
        spark = await open_spark(synapse.settings)
        try:
            began = time.perf_counter()
            turns_of, episodes, actions = await replay(synapse, spark, rows, chat)
            replay_s = time.perf_counter() - began
            await synapse.relay(RelayConfig(batch_size=512)).drain(timeout_s=3_600)
            dia, _ = await recall_bench.plant_all(synapse, turns)
            every = {i: {d} for i, d in dia.items()}
            learned = await ask(synapse, questions, "learned", turns_of, when)
            lasting = await ask(synapse, questions, "learned", turns_of, when, leave_out=episodes)
            store_all = await ask(synapse, questions, "locomo", every, when)
        finally:
            await spark.close()
            await synapse.close()
    return {
        "learned": learned,
        "lasting only": lasting,
        "store every turn": store_all,
        "actions": dict(actions),
        "replay_s": replay_s,
        "turns": len(rows),
        "questions": len(questions),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.add_argument("--no-recall", action="store_true", help="turn level and pairs only")
    parser.add_argument("--convs", default="", help="only these conversations (comma-separated)")
    parser.add_argument("--alternatives", action="store_true", help="also the other designs, turn level")
    parser.add_argument("--chat", action="store_true", help="replay through KGent.observe (questions answered)")
    args = parser.parse_args()
    rows, memorable = load(args.data)
    if args.convs:
        rows = [r for r in rows if r.conv in args.convs.split(",")]
        memorable = {m for m in memorable if m[0] in args.convs.split(",")}
    levels = turn_level(rows, memorable)
    right, total, wrong = pair_accuracy()
    recalled = None if args.no_recall else asyncio.run(learn_then_recall(args.data, rows, args.chat))
    if args.json:
        p, r, _ = levels["the learner (kgent.understand)"]
        out: dict[str, Any] = {"turn_precision": round(p, 3), "turn_recall": round(r, 3)}
        out["turn_level"] = {
            name: {"precision": round(a, 3), "recall": round(b, 3), "kept": n} for name, (a, b, n) in levels.items()
        }
        if recalled is not None:
            out["learn_recall_at_10"] = round(recalled["learned"][10], 1)
            out["store_all_recall_at_10"] = round(recalled["store every turn"][10], 1)
            out["learn_then_recall"] = recalled
        out["fact_pairs_accuracy"] = round(right / total, 3)
        print(json.dumps(out, default=str))
        return
    print(f"turn level, {len(rows)} turns, {len(memorable)} memorable:")
    for name, (p, r, n) in levels.items():
        print(f"  {name:34} precision {p:.3f}  recall {r:.3f}  (kept {n})")
    if recalled is not None:
        print(f"learn then recall, {recalled['questions']} questions, recall_any@5/10/20 (%):")
        for name in ("learned", "lasting only", "store every turn"):
            print(f"  {name:34} " + "  ".join(f"@{k} {recalled[name][k]:.1f}" for k in KS))
        print(
            f"  replay {recalled['turns']} turns in {recalled['replay_s']:.1f} s; what they did: {recalled['actions']}"
        )
    if args.alternatives:
        print("alternatives (fitted on tests/data/memorable.tsv only), turn level:")
        for name, p, r, n in alternatives(rows, memorable):
            print(f"  {name:48} precision {p:.3f}  recall {r:.3f}  (kept {n})")
    print(f"fact pairs ({PAIRS.name}): {right} of {total} right")
    for line in wrong:
        print(f"  {line}")


if __name__ == "__main__":
    main()

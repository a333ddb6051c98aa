"""The lexical signal where it was not put: the anchors' own full-text search, on the LoCoMo dev split.

Measured once to choose where the lexical signal lives (see kgents.resonance.lexical): the same tokens (our
Snowball stems, stop and question words dropped) ranked by SQLite FTS5's bm25() and by PostgreSQL's
ts_rank_cd over a GIN-indexed tsvector, per conversation, recall_any@5/10/20 and query p50. PostgreSQL has no
BM25 (ts_rank_cd has no IDF), so the anchor route would rank differently on the two anchors.

    python bench/lexical_alternatives.py ../shared/data/locomo-dev [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

from kgents.resonance.lexical import tokens

Ranker = Callable[[dict[str, Any]], list[str]]


def score(questions: list[dict[str, Any]], ranker: Ranker) -> tuple[dict[int, float], float]:
    hits = {5: 0, 10: 0, 20: 0}
    latencies = []
    for q in questions:
        began = time.perf_counter()
        ranked = ranker(q)
        latencies.append((time.perf_counter() - began) * 1000)
        for k in hits:
            hits[k] += bool(set(q["evidence"]) & set(ranked[:k]))
    return {k: round(100 * v / len(questions), 1) for k, v in hits.items()}, statistics.median(latencies)


def body(turn: dict[str, Any]) -> str:
    return " ".join(tokens(f"{turn['speaker']}: {turn['text']}"))


def sqlite_ranker(turns: list[dict[str, Any]]) -> Ranker:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE f USING fts5(conv UNINDEXED, dia UNINDEXED, body)")
    db.executemany("INSERT INTO f VALUES (?, ?, ?)", [(t["conv"], t["dia_id"], body(t)) for t in turns])

    def rank(q: dict[str, Any]) -> list[str]:
        terms = sorted(set(tokens(q["question"])))
        if not terms:
            return []
        match = " OR ".join(f'"{t}"' for t in terms)
        sql = "SELECT dia FROM f WHERE f MATCH ? AND conv = ? ORDER BY bm25(f) LIMIT 20"
        return [r[0] for r in db.execute(sql, (match, q["conv"]))]

    return rank


async def postgres_ranked(url: str, turns: list[dict[str, Any]], questions: list[dict[str, Any]]) -> dict[int, Any]:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TEMP TABLE t (conv text, dia text, doc tsvector)")
        rows = [(t["conv"], t["dia_id"], body(t)) for t in turns]
        await conn.executemany("INSERT INTO t VALUES ($1, $2, to_tsvector('simple', $3))", rows)
        await conn.execute("CREATE INDEX ON t USING gin (doc)")
        out: dict[int, Any] = {}
        sql = (
            "SELECT dia FROM t WHERE conv = $1 AND doc @@ to_tsquery('simple', $2)"
            " ORDER BY ts_rank_cd(doc, to_tsquery('simple', $2)) DESC LIMIT 20"
        )
        for i, q in enumerate(questions):
            terms = sorted(set(tokens(q["question"])))
            out[i] = [r["dia"] for r in await conn.fetch(sql, q["conv"], " | ".join(terms))] if terms else []
        return out
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--postgres-url", default="postgresql://127.0.0.1:5432/test")
    args = parser.parse_args()
    turns = [json.loads(line) for line in (args.data / "turns.jsonl").read_text().splitlines()]
    questions = [json.loads(line) for line in (args.data / "questions.jsonl").read_text().splitlines()]
    questions = [q for q in questions if q["evidence"]]
    rates, p50 = score(questions, sqlite_ranker(turns))
    print(f"SQLite FTS5 bm25()                  any@5/10/20 {rates[5]}/{rates[10]}/{rates[20]}  p50 {p50:.2f} ms")
    ranked = asyncio.run(postgres_ranked(args.postgres_url, turns, questions))
    index = {id(q): i for i, q in enumerate(questions)}
    rates, _ = score(questions, lambda q: list(ranked[index[id(q)]]))
    print(f"PostgreSQL ts_rank_cd (GIN, no IDF) any@5/10/20 {rates[5]}/{rates[10]}/{rates[20]}")


if __name__ == "__main__":
    main()

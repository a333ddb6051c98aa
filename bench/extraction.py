"""Extraction's precision and recall on tests/data/extraction.tsv (a labelled table of statements), and the
paraphrase threshold measured on tests/data/paraphrases.tsv with the default embedder.

    .venv/bin/python bench/extraction.py

A case counts as a true positive when extraction recognises a statement of the expected kind and polarity; a
false positive when it stores something it should not (or of the wrong kind); a false negative when it misses one.
"""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass
from pathlib import Path

from kgents.kgent.extract import extract

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"


@dataclass(frozen=True, slots=True)
class Score:
    tp: int
    fp: int
    fn: int
    misses: tuple[str, ...]

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def cases(path: Path = DATA / "extraction.tsv") -> list[tuple[str, str, int]]:
    with path.open(encoding="utf-8") as f:
        rows = [r for r in csv.reader(f, delimiter="\t") if r and not r[0].startswith("#")]
    return [(r[0], r[1], int(r[2])) for r in rows]


def score(table: list[tuple[str, str, int]]) -> Score:
    tp = fp = fn = 0
    misses: list[str] = []
    for text, kind, polarity in table:
        found = extract(text)
        right = found is not None and found.kind.value == kind and found.polarity == polarity
        if kind == "-":
            if found is not None:
                fp += 1
                misses.append(f"stored: {text}")
        elif right:
            tp += 1
        else:
            fn += 1
            if found is not None:
                fp += 1
            misses.append(f"missed: {text} -> {found.kind.value if found else None} {found.polarity if found else ''}")
    return Score(tp, fp, fn, tuple(misses))


def pairs(path: Path = DATA / "paraphrases.tsv") -> list[tuple[str, str, bool]]:
    with path.open(encoding="utf-8") as f:
        rows = [r for r in csv.reader(f, delimiter="\t") if r and not r[0].startswith("#")]
    return [(r[0], r[1], r[2] == "1") for r in rows]


async def pair_scores() -> list[tuple[float, bool]]:
    """Recall score of b against a alone, for each labelled pair (a throwaway home, the default embedder)."""
    import tempfile

    from kgents.config import Settings
    from kgents.memory import AsyncMemory

    found: list[tuple[float, bool]] = []
    for i, (a, b, same) in enumerate(pairs()):
        settings = Settings(home=tempfile.mkdtemp(prefix="kgents-pairs-"), persona=f"p{i}")
        async with AsyncMemory(settings=settings) as memory:
            await memory.remember(a)
            hits = await memory.recall(b, limit=1)
            found.append((hits[0].score if hits else 0.0, same))
    return found


def best_threshold(scored: list[tuple[float, bool]]) -> tuple[float, float]:
    """(threshold, accuracy): the midpoint between scores that classifies the most pairs right."""
    values = sorted({s for s, _ in scored})
    candidates = [(x + y) / 2 for x, y in itertools.pairwise(values)] or values
    best = max(candidates, key=lambda t: (sum((s >= t) == same for s, same in scored), -abs(t - 0.6)))
    return best, sum((s >= best) == same for s, same in scored) / len(scored)


def main() -> None:
    import asyncio

    table = cases()
    result = score(table)
    print(
        f"extraction on {len(table)} statements: precision {result.precision:.3f}, recall {result.recall:.3f}"
        f" (tp {result.tp}, fp {result.fp}, fn {result.fn})"
    )
    for line in result.misses:
        print(f"  {line}")
    scored = asyncio.run(pair_scores())
    same = [s for s, k in scored if k]
    other = [s for s, k in scored if not k]
    threshold, accuracy = best_threshold(scored)
    print(
        f"paraphrase scores: same meaning {min(same):.3f}-{max(same):.3f}, different {min(other):.3f}-{max(other):.3f};"
        f" best threshold {threshold:.3f} ({accuracy:.0%} of {len(scored)} pairs right)"
    )


if __name__ == "__main__":
    main()

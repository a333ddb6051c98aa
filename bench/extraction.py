"""What the K-gent keeps, scored on tests/data/extraction.tsv (a labelled table of statements and of chat lines that
are not memories: requests, questions, corrections, hypotheticals, quotes, small talk; as many as the statements),
and the
same-meaning rule (kgent/sameness.py) measured on tests/data/paraphrases.tsv with the default embedder: recall's
dense cosine (the score learning and dreaming decide on), the best threshold among pairs with the same specifics,
and how many distinct facts the rule would merge.

    .venv/bin/python bench/extraction.py

The K-gent's reading (`kgent.understand.read`): a preference, value, pattern or behaviour read by the rules
(`kgent.extract`), a fact (INSIGHT, polarity 1) kept by the learner (`kgent.memorable`), or nothing lasting. A case
counts as a true positive when the reading is of the expected kind and polarity; a false positive when it keeps
something it should not (or of the wrong kind); a false negative when it misses one. The learner is never fitted on
this table (bench/train_memorable.py fits it on tests/data/memorable.tsv).
"""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass
from pathlib import Path

from kgents.kgent.sameness import SAME_THRESHOLD, same_facts, says_the_same
from kgents.kgent.understand import read

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


@dataclass(frozen=True, slots=True)
class Kept:
    kind: str
    polarity: int


def kept(text: str) -> Kept | None:
    """What the K-gent keeps as lasting from `text`: its kind and polarity, or None."""
    reading = read(text)
    if reading is None or not reading.lasting:
        return None
    if reading.statement is None:
        return Kept("INSIGHT", 1)
    return Kept(reading.statement.kind.value, reading.statement.polarity)


def score(table: list[tuple[str, str, int]]) -> Score:
    tp = fp = fn = 0
    misses: list[str] = []
    for text, kind, polarity in table:
        found = kept(text)
        right = found is not None and found.kind == kind and found.polarity == polarity
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
            misses.append(f"missed: {text} -> {found.kind if found else None} {found.polarity if found else ''}")
    return Score(tp, fp, fn, tuple(misses))


def pairs(path: Path = DATA / "paraphrases.tsv") -> list[tuple[str, str, bool]]:
    with path.open(encoding="utf-8") as f:
        rows = [r for r in csv.reader(f, delimiter="\t") if r and not r[0].startswith("#")]
    return [(r[0], r[1], r[2] == "1") for r in rows]


@dataclass(frozen=True, slots=True)
class Pair:
    a: str
    b: str
    same: bool
    score: float
    """Recall's score of b against a alone, in dense mode: the cosine learning and dreaming decide on."""

    @property
    def facts_agree(self) -> bool:
        return same_facts(self.a, self.b)


async def pair_scores(labelled: list[tuple[str, str, bool]] | None = None) -> list[Pair]:
    """Each labelled pair scored by recall (dense) in one throwaway home with the default embedder."""
    import tempfile

    from kgents.config import Settings
    from kgents.garden.filters import EntryFilter
    from kgents.memory import AsyncMemory

    found: list[Pair] = []
    async with AsyncMemory(settings=Settings(home=tempfile.mkdtemp(prefix="kgents-pairs-"), persona="pairs")) as m:
        for i, (a, b, same) in enumerate(labelled if labelled is not None else pairs()):
            await m.remember(a, tags=[f"pair-{i}"])
            hits = await m.recall(b, limit=1, mode="dense", filters=EntryFilter(tags=(f"pair-{i}",)))
            found.append(Pair(a, b, same, hits[0].score if hits else 0.0))
    return found


def best_threshold(scored: list[tuple[float, bool]]) -> tuple[float, float]:
    """(threshold, accuracy): the midpoint between scores that classifies the most pairs right."""
    values = sorted({s for s, _ in scored})
    candidates = [(x + y) / 2 for x, y in itertools.pairwise(values)] or values
    best = max(candidates, key=lambda t: (sum((s >= t) == same for s, same in scored), -abs(t - 0.6)))
    return best, sum((s >= best) == same for s, same in scored) / len(scored)


def judged(scored: list[Pair], threshold: float = SAME_THRESHOLD) -> tuple[int, int, int]:
    """(right, distinct facts merged, same meaning kept apart) of the rule `says_the_same` at `threshold`."""
    merged = [says_the_same(p.a, p.b, p.score, threshold) for p in scored]
    wrong_merges = sum(m and not p.same for m, p in zip(merged, scored, strict=True))
    missed = sum(p.same and not m for m, p in zip(merged, scored, strict=True))
    return len(scored) - wrong_merges - missed, wrong_merges, missed


def main() -> None:
    import asyncio

    table = cases()
    result = score(table)
    print(
        f"what the K-gent keeps, {len(table)} lines: precision {result.precision:.3f}, recall {result.recall:.3f}"
        f" (tp {result.tp}, fp {result.fp}, fn {result.fn})"
    )
    for line in result.misses:
        print(f"  {line}")
    scored = asyncio.run(pair_scores())
    same = [p.score for p in scored if p.same]
    other = [p.score for p in scored if not p.same]
    alone, alone_accuracy = best_threshold([(p.score, p.same) for p in scored])
    print(
        f"paraphrase pairs (dense cosine): same meaning {min(same):.3f}-{max(same):.3f}, different"
        f" {min(other):.3f}-{max(other):.3f}; the cosine alone at best {alone:.3f} gets {alone_accuracy:.0%} of"
        f" {len(scored)} right"
    )
    open_pairs = [p for p in scored if p.facts_agree]
    threshold, accuracy = best_threshold([(p.score, p.same) for p in open_pairs])
    print(
        f"  pairs with the same specifics and word order ({len(open_pairs)}): best threshold {threshold:.3f}"
        f" ({accuracy:.0%} right); SAME_THRESHOLD is {SAME_THRESHOLD}"
    )
    right, merged, missed = judged(scored)
    print(
        f"  the rule (cosine >= {SAME_THRESHOLD} and same specifics and order): {right} of {len(scored)} right,"
        f" {merged} distinct facts merged, {missed} paraphrases kept apart"
    )


if __name__ == "__main__":
    main()

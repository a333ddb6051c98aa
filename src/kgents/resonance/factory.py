"""Choosing the vector index from settings: a Qdrant server when `KGENTS_QDRANT_URL` is set, else the embedded
one.

Same code above the adapters either way; the embedded index lives in `KGENTS_HOME/index` and is owned by one
process (a second one gets `IndexLockedError` naming the owner).
"""

from __future__ import annotations

from pathlib import Path

from kgents.config import Settings
from kgents.resonance.protocols import VectorIndex


def index_root(settings: Settings) -> Path:
    return settings.home / "index"


def open_index(settings: Settings) -> VectorIndex:
    if settings.qdrant_url:
        from kgents.resonance.server import QdrantServerIndex

        return QdrantServerIndex.connect(settings.qdrant_url, settings.qdrant_api_key)
    from kgents.resonance.edge import EdgeIndex

    return EdgeIndex.open(index_root(settings))

"""Which collection is live: recorded in the anchor (`synapse_state`), so every process agrees, and switched
in one compare-and-set so a reindex changes over without a moment where searches find nothing."""

from __future__ import annotations

import hashlib
import re
import uuid

from kgents.anchor.migrations import check_schema_name
from kgents.errors import IndexMismatchError
from kgents.resonance.index_common import check_collection_name
from kgents.resonance.protocols import Embedder, VectorIndex
from kgents.synapse.anchor import RelayAnchor
from kgents.synapse.records import IndexState, Target

_UNSAFE = re.compile(r"[^a-z0-9_]+")


_SLUG_MAX = 16
_PREFIX_MAX = 30
"""`<prefix>_<slug>_<8 hex>` is then at most 30 + 1 + 16 + 1 + 8 = 56 characters: under the index's 64."""


def collection_name(prefix: str, embedder: str) -> str:
    """A fresh collection name: `<prefix>_<embedder>_<random>` (lower case, `_` only, always a valid name)."""
    slug = _UNSAFE.sub("_", embedder.lower()).strip("_")[:_SLUG_MAX].strip("_") or "embedder"
    return check_collection_name(f"{prefix[:_PREFIX_MAX]}_{slug}_{uuid.uuid4().hex[:8]}")


def collection_prefix(backend: str, schema: str | None) -> str:
    """Collections of a PostgreSQL schema carry its name, so several schemas can share one Qdrant server; a long
    name is cut and told apart by a short hash of the whole, so the prefix stays within 30 characters."""
    if backend != "postgres" or not schema:
        return "garden"
    check_schema_name(schema)
    if len(schema) + len("_garden") <= _PREFIX_MAX:
        return f"{schema}_garden"
    digest = hashlib.sha256(schema.encode()).hexdigest()[:6]
    return f"{schema[:16]}_{digest}_garden"


async def ensure_state(anchor: RelayAnchor, index: VectorIndex, embedder: Embedder, prefix: str) -> IndexState:
    """The state in force, created on first use with `embedder`; its collections exist in the index."""
    state = await anchor.read_state()
    if state is None:
        target = Target(collection_name(prefix, embedder.name), embedder.name, embedder.dimension)
        await index.ensure_collection(target.collection, target.embedder, target.dimension)
        state = await anchor.init_state(target)
        if state.active != target:  # another process won the race: keep theirs
            await index.drop_collection(target.collection)
    for target in state.targets():
        await index.ensure_collection(target.collection, target.embedder, target.dimension)
    return state


def check_embedder(state: IndexState, configured: str | None) -> None:
    """A configured embedder other than the one the index was built with is an error with the way out."""
    if (
        configured
        and configured != state.active.embedder
        and (state.pending is None or state.pending.embedder != configured)
    ):
        raise IndexMismatchError(
            f"the index was built with embedder {state.active.embedder!r}"
            f" but KGENTS_EMBEDDER is {configured!r};"
            f" run `kgents synapse reindex --embedder {configured}` to switch"
        )

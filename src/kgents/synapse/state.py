"""Which collection is live: recorded in the anchor (`synapse_state`), so every process agrees, and switched
in one compare-and-set so a reindex changes over without a moment where searches find nothing."""

from __future__ import annotations

import re
import uuid

from kgents.errors import IndexMismatchError
from kgents.resonance.protocols import Embedder, VectorIndex
from kgents.synapse.anchor import RelayAnchor
from kgents.synapse.faults import check_collections
from kgents.synapse.records import IndexState, Target

_UNSAFE = re.compile(r"[^a-z0-9_]+")


def collection_name(prefix: str, embedder: str) -> str:
    """A fresh collection name: `<prefix>_<embedder>_<random>` (lower case, `_` only)."""
    slug = _UNSAFE.sub("_", embedder.lower()).strip("_")[:40] or "embedder"
    return f"{prefix}_{slug}_{uuid.uuid4().hex[:8]}"


def collection_prefix(backend: str, schema: str | None) -> str:
    """Collections of a PostgreSQL schema carry its name, so several schemas can share one Qdrant server."""
    return f"{schema}_garden" if backend == "postgres" and schema else "garden"


async def ensure_state(
    anchor: RelayAnchor, index: VectorIndex, embedder: Embedder, prefix: str, *, recreate: bool = False
) -> IndexState:
    """The state in force, created on first use with `embedder`; its collections exist in the index. A collection
    of an existing state that is gone from the index raises MissingCollectionError, unless `recreate` (reconcile
    and reindex, which refill it) allows making it again, empty."""
    state = await anchor.read_state()
    if state is not None and not recreate:
        await check_collections(index, state)
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

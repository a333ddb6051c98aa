"""Which collection is live: recorded in the anchor (`synapse_state`), so every process agrees, and switched
in one compare-and-set so a reindex changes over without a moment where searches find nothing."""

from __future__ import annotations

import hashlib
import re
import uuid

from kgents.anchor.migrations import check_schema_name
from kgents.errors import IndexMismatchError, NotFoundError
from kgents.resonance.embedders import EMBEDDERS
from kgents.resonance.index_common import check_collection_name
from kgents.resonance.protocols import Embedder, VectorIndex
from kgents.synapse.faults import MissingCollectionError, check_collections
from kgents.synapse.queue import RelayQueue
from kgents.synapse.records import IndexIdentity, IndexState, Target

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


async def ensure_state(
    queue: RelayQueue, index: VectorIndex, embedder: Embedder, prefix: str, *, recreate: bool = False
) -> IndexState:
    """The state in force, created on first use with `embedder` in this index; its collections exist in the
    index. An anchor that feeds another index raises `IndexMismatchError` (never drain its outbox here); a
    collection of this index that is gone raises `MissingCollectionError`, unless `recreate` (reconcile and
    reindex, which refill it) allows making it again, empty."""
    state = await queue.read_state()
    if state is None:
        identity = IndexIdentity(uuid.uuid4().hex, index.location)
        target = Target(collection_name(prefix, embedder.name), embedder.name, embedder.dimension)
        await index.ensure_collection(target.collection, target.embedder, target.dimension, identity.id)
        state = await queue.init_state(target, identity)
        if state.active != target:  # another process won the race: keep theirs
            await index.drop_collection(target.collection)
    state = await check_index(queue, index, state, recreate=recreate)
    index_id = state.identity.id if state.identity else None
    for target in state.targets():
        await index.ensure_collection(target.collection, target.embedder, target.dimension, index_id)
    return state


async def _stamp(index: VectorIndex, collection: str) -> tuple[bool, str | None]:
    """Whether `collection` exists in `index`, and the index identity stamped on it."""
    try:
        return True, await index.index_id(collection)
    except NotFoundError:
        return False, None


async def feeds(index: VectorIndex, state: IndexState) -> bool:
    """Whether `index` is the one the anchor (in `state`) feeds."""
    _present, found = await _stamp(index, state.active.collection)
    return state.identity is not None and found == state.identity.id


async def check_index(
    queue: RelayQueue, index: VectorIndex, state: IndexState, *, recreate: bool = False
) -> IndexState:
    """The state, once it is certain that `index` is the one the anchor feeds; an anchor from before index
    identities is claimed by the first index that opens it. The anchor's own index (same location) with its
    active collection gone is `MissingCollectionError` unless `recreate`."""
    present, found = await _stamp(index, state.active.collection)
    if state.identity is None:
        claimed = await queue.claim_index(IndexIdentity(found or uuid.uuid4().hex, index.location))
        state = claimed or await queue.read_state() or state
        if claimed is not None:
            return state
    known = state.identity
    if known is not None and found == known.id:
        if not recreate:
            await check_collections(index, state)
        return state
    if known is not None and known.location == index.location and not present:
        if recreate:
            return state
        raise MissingCollectionError(state.active.collection)
    raise IndexMismatchError(mismatch_message(state, index.location, state.active.collection, present))


def mismatch_message(state: IndexState, here: str, collection: str, present: bool) -> str:
    """One line naming the index the anchor feeds and the one opened here."""
    known = state.identity
    fed = "an unknown index" if known is None else f"{known.location} (index {known.id[:8]})"
    what = "holds another index's copy of" if present else "does not hold"
    return (
        f"this anchor feeds {fed}, but {here} {what} its collection {collection}: refusing to relay or search"
        " here (it would take that index's events); use the KGENTS_HOME or KGENTS_QDRANT_URL of the index it feeds,"
        " or `kgents synapse adopt --yes` to rebuild this index from the anchor and feed it instead"
    )


def check_embedder(state: IndexState, configured: str | None) -> None:
    """A configured embedder other than the one the index was built with is an error with the way out."""
    if (
        configured
        and configured != state.active.embedder
        and (state.pending is None or state.pending.embedder != configured)
    ):
        raise IndexMismatchError(
            f"the index was built with embedder {state.active.embedder!r} but KGENTS_EMBEDDER is {configured!r};"
            f" {embedder_way_out(state.active.embedder, configured)}"
        )


def embedder_way_out(built_with: str, configured: str) -> str:
    """What to do about a configured embedder the index was not built with: switch to it when it exists, else
    set the one the index has."""
    if configured in EMBEDDERS:
        return f"run `kgents synapse reindex --embedder {configured}` to switch, or unset KGENTS_EMBEDDER"
    choices = ", ".join(EMBEDDERS)
    return f"{configured!r:.60} is not a known embedder ({choices}); unset it to use {built_with!r}"

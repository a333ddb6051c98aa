"""Adopt: make the opened vector index the one the anchor feeds, rebuilt in full from the anchor.

The way out when an anchor's index is elsewhere (another `KGENTS_HOME` over the same PostgreSQL schema) or lost
(its folder deleted): a fresh collection in this index, stamped with a new index identity, receives every entry;
then one compare-and-set records it (and the identity) in `synapse_state`. From then on the index the anchor fed
before refuses to relay or search, and its relays cannot complete events (the active collection is not in it).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from kgents.errors import ConflictError, ValidationError
from kgents.resonance.protocols import Embedder, VectorIndex
from kgents.synapse.apply import EmbedderResolver
from kgents.synapse.coherency import CoherencyReport
from kgents.synapse.queue import RelayQueue
from kgents.synapse.records import IndexIdentity, IndexState, Target
from kgents.synapse.reindex import catch_up, copy_all
from kgents.synapse.state import collection_name, feeds


@dataclass(frozen=True, slots=True)
class AdoptReport:
    identity: IndexIdentity
    previous: IndexIdentity | None
    target: Target
    copied: int
    coherency: CoherencyReport

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.identity.to_dict(),
            "previous_index": None if self.previous is None else self.previous.to_dict(),
            "collection": self.target.to_dict(),
            "copied": self.copied,
            "coherency": self.coherency.to_dict(),
        }


async def adopt(
    queue: RelayQueue,
    index: VectorIndex,
    embedder: Embedder,
    embedders: EmbedderResolver,
    state: IndexState,
    prefix: str,
) -> AdoptReport:
    """Rebuild `index` from the anchor and make it the one the anchor feeds (`state`: the anchor's state)."""
    if await feeds(index, state):
        raise ValidationError(
            f"{index.location} already is the index this anchor feeds; `kgents synapse reindex` rebuilds it"
        )
    identity = IndexIdentity(uuid.uuid4().hex, index.location)
    target = Target(collection_name(prefix, embedder.name), embedder.name, embedder.dimension)
    await index.ensure_collection(target.collection, target.embedder, target.dimension, identity.id)
    copied = await copy_all(queue, index, embedder, target)
    adopted = await queue.adopt_index(state.generation, target, identity)
    if adopted is None:
        await index.drop_collection(target.collection)
        raise ConflictError("the index state changed during the adoption (a reindex?); nothing was adopted")
    report, _ = await catch_up(queue, index, embedders, target)
    return AdoptReport(identity, state.identity, target, copied, report)

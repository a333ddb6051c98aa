"""Index faults that no retry repairs, and the command that does.

A collection the index state names can vanish from under the relay (dropped by hand, a Qdrant server reset, a
deleted index folder). Retrying cannot bring its points back, and recreating it empty behind the user's back
would hide the loss, so the relay treats it as an index fault (its circuit opens) and every command points at
`kgents synapse reconcile`, which recreates the collection and refills it from the anchor.
"""

from __future__ import annotations

from kgents.errors import NotFoundError
from kgents.resonance.protocols import VectorIndex
from kgents.synapse.records import IndexState

REPAIR_COMMAND = "kgents synapse reconcile"


class MissingCollectionError(NotFoundError):
    """A collection the index state names does not exist in the index."""

    def __init__(self, collection: str) -> None:
        super().__init__(
            f"vector collection {collection!r} is missing from the index;"
            f" run `{REPAIR_COMMAND}` to recreate it and refill it from the anchor"
        )
        self.collection = collection


async def check_collections(index: VectorIndex, state: IndexState) -> None:
    """Raise MissingCollectionError unless every collection of `state` exists (creating none)."""
    present = {c.name for c in await index.collections()}
    for target in state.targets():
        if target.collection not in present:
            raise MissingCollectionError(target.collection)

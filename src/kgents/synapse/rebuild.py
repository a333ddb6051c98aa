"""Refilling a collection the index had to make again: the embedded index moves aside a collection it cannot
read (a load that failed, or died of a full disk) and makes it again, empty (`resonance.edge_guard`); the anchor
holds every entry, so the opener puts them back at once, saying so in one line."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kgents.synapse.runtime import Stack

log = logging.getLogger("kgents.synapse")


async def refill_rebuilt(stack: Stack) -> int:
    """Refill from the anchor every collection of the index state that the index made again; how many entries
    were put back."""
    rebuilt: dict[str, str] = getattr(stack.index, "rebuilt", None) or {}
    ours = {t.collection for t in stack.state.targets()} & set(rebuilt)
    if not ours:
        return 0
    report = await stack.reconcile()
    for name in ours:
        rebuilt.pop(name, None)
    log.warning(
        "the embedded vector index was rebuilt from the anchor: %d entries put back (coherency %.2f)",
        report.repaired,
        report.after.coherency_with_truth,
    )
    return report.repaired

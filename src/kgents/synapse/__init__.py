"""Synapse, the CDC relay: keeps the vector index in step with the anchor's outbox, measures how coherent the
index is with the truth, repairs it (reconcile, reindex) and answers semantic searches hydrated from the anchor.

Start from `open_synapse(settings)` (the whole stack) or build a `Relay` from a store's `relay_side()`, a `VectorIndex`
and an embedder resolver.
"""

from __future__ import annotations

from kgents.synapse.coherency import CoherencyReport, ReconcileReport, compare, measure, reconcile
from kgents.synapse.metrics import RelayStats, SynapseMetrics, collect_metrics
from kgents.synapse.queue import RelayQueue
from kgents.synapse.reindex import ReindexReport, reindex
from kgents.synapse.relay import Relay, RelayConfig
from kgents.synapse.runtime import DrainResult, Synapse, open_synapse

__all__ = [
    "CoherencyReport",
    "DrainResult",
    "ReconcileReport",
    "ReindexReport",
    "Relay",
    "RelayConfig",
    "RelayQueue",
    "RelayStats",
    "Synapse",
    "SynapseMetrics",
    "collect_metrics",
    "compare",
    "measure",
    "open_synapse",
    "reconcile",
    "reindex",
]

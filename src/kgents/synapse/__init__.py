"""Synapse, the CDC relay: keeps the vector index in step with the anchor's outbox, measures how coherent the
index is with the truth, repairs it (reconcile, reindex) and answers semantic searches hydrated from the anchor.

Start from `open_synapse(settings)` (the whole stack) or build a `Relay` from `queue_on(store.anchor)`, a
`VectorIndex` and an embedder resolver.
"""

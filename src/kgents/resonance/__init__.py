"""Resonance: embeddings of garden entries and the vector index (Qdrant) that finds them by meaning."""

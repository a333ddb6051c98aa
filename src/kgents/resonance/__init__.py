"""Resonance: embeddings of garden entries and the vector index (Qdrant) that finds them by meaning.

Entry points (imported from their modules, so that importing this package stays cheap):
- `kgents.resonance.embedders.open_embedder(name=None)`: the embedder named by `KGENTS_EMBEDDER`
  (`minilm-mpnet-static-384`, the packaged default; `minilm-static-256`, the former default;
  `minilm`, the `quality` extra) behind a content-hash cache.
- `kgents.resonance.factory.open_index(settings)`: `QdrantServerIndex` when `KGENTS_QDRANT_URL` is set,
  else the embedded `EdgeIndex` under `KGENTS_HOME/index` (one owning process).
- `kgents.resonance.hashing.content_hash(text)`: sha256 of the NFC text, to skip re-embedding.
- `kgents.resonance.protocols`: the `Embedder` and `VectorIndex` contracts both sides implement.
"""

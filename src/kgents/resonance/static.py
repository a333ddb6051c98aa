"""The default embedder: a static (model2vec-style) model run with tokenizers + numpy alone.

Why our own inference instead of importing model2vec: model2vec pulls in `rich` (the core must not import UI
libraries) and a stack of dependencies, while the maths of a static model is four lines: tokenize, look up one
row per token, mean-pool, L2-normalise. It gives the same vectors as `model2vec.StaticModel.encode` (up to
float16 rounding, which model2vec keeps and we do not) and is deterministic across processes.

The model files ship as package data under `models/<name>/` and are made by `deploy/distill_embedder.py`.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from kgents.errors import ConfigError
from kgents.resonance.hashing import normalise_text
from kgents.resonance.protocols import Vectors

MODELS_DIR = Path(__file__).resolve().parent / "models"

_SAFETENSORS_DTYPES = {"F16": np.float16, "F32": np.float32}


def read_safetensors(path: Path) -> dict[str, np.ndarray[Any, Any]]:
    """Tensors of a .safetensors file (F16/F32 only): an 8-byte header length, a JSON header, raw
    little-endian data. Read with numpy so the runtime needs neither torch nor the safetensors package."""
    raw = path.read_bytes()
    if len(raw) < 8:
        raise ConfigError(f"embedding model file {path} is truncated")
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_len])
    data = memoryview(raw)[8 + header_len :]
    tensors: dict[str, np.ndarray[Any, Any]] = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        dtype = _SAFETENSORS_DTYPES.get(spec["dtype"])
        if dtype is None:
            raise ConfigError(f"embedding model file {path}: tensor {name} has unsupported dtype {spec['dtype']}")
        start, end = spec["data_offsets"]
        array = np.frombuffer(data[start:end], dtype=np.dtype(dtype).newbyteorder("<"))
        tensors[name] = array.reshape(spec["shape"])
    return tensors


class StaticEmbedder:
    """Mean of per-token vectors, L2-normalised. Thread-safe: no mutable state after construction."""

    def __init__(self, folder: Path, name: str) -> None:
        try:
            config = json.loads((folder / "config.json").read_text())
            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            tensors = read_safetensors(folder / "model.safetensors")
        except (OSError, ValueError) as exc:
            raise ConfigError(f"embedding model {name} could not be loaded from {folder}: {exc}") from None
        self._name = name
        self._table = np.ascontiguousarray(tensors["embeddings"], dtype=np.float32)
        self._normalize = bool(config.get("normalize", True))
        max_tokens = config.get("max_length")
        tokenizer.no_padding()
        if max_tokens:
            tokenizer.enable_truncation(int(max_tokens))
        else:
            tokenizer.no_truncation()
        self._tokenizer = tokenizer
        vocab = tokenizer.get_vocab()
        # model2vec cuts each text to max_length * median token length characters before tokenizing; so do we.
        median_token_len = int(np.median([len(token) for token in vocab]))
        self._max_chars = int(max_tokens) * median_token_len if max_tokens else None
        unk = json.loads(tokenizer.to_str())["model"].get("unk_token")
        self._unk_id: int | None = vocab.get(unk) if unk else None
        if len(vocab) != self._table.shape[0]:
            raise ConfigError(
                f"embedding model {name}: {len(vocab)} tokens but {self._table.shape[0]} vectors in {folder}"
            )

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return int(self._table.shape[1])

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, without special tokens and without [UNK] (it carries no meaning here)."""
        prepared = [normalise_text(t) for t in texts]
        if self._max_chars is not None:
            prepared = [t[: self._max_chars] for t in prepared]
        encodings = self._tokenizer.encode_batch_fast(prepared, add_special_tokens=False)
        unk = self._unk_id
        return [[i for i in enc.ids if i != unk] for enc in encodings]

    light = True
    """Cheap enough (a table lookup per token) to run a few texts on the event loop instead of a worker thread."""

    def embed(self, texts: Sequence[str]) -> Vectors:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one string")
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        ids = self.token_ids(texts)
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        present = lengths > 0
        if present.any():
            flat = np.fromiter((i for x in ids for i in x), dtype=np.int64, count=int(lengths.sum()))
            starts = np.concatenate(([0], np.cumsum(lengths[present])[:-1]))
            sums = np.add.reduceat(self._table[flat], starts, axis=0)
            out[present] = sums / lengths[present, None].astype(np.float32)
        # A text without any known token (only emoji or unknown symbols) means nothing to this model: the zero
        # vector, as model2vec gives, which is close to nothing (not [UNK]'s row, which would match every such text).
        out[~present] = 0.0
        if self._normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            np.divide(out, np.maximum(norms, 1e-12), out=out)
        return out


def load_packaged(name: str) -> StaticEmbedder:
    """A static model shipped inside the kgents package (works offline right after install)."""
    folder = MODELS_DIR / name
    if not (folder / "model.safetensors").is_file():
        raise ConfigError(f"embedding model {name} is missing from the installed package ({folder})")
    return StaticEmbedder(folder, name)

"""The lexical signal: BM25 as sparse vectors, scored by the index with its IDF modifier.

Text → lowercase word tokens (Unicode letters and digits) → English stop words and question words dropped →
Snowball (Porter2) stems from `snowballstemmer` → term ids (CRC-32 of the stem). A document's weight for a
term is BM25's saturated term frequency, `tf·(k1+1) / (tf + k1·(1 - b + b·len/AVG_LEN))`; the index multiplies
it by the term's IDF over the collection at query time (Qdrant's `Modifier.IDF`, on both adapters), so the
score of a query is BM25. A fixed AVG_LEN (memories are short notes, not pages) keeps a document's vector a pure
function of its own text: the relay writes it beside the dense vector, and the content hash covers both.
The same code runs for both index adapters, so tokenisation can never differ between them.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import snowballstemmer

ANALYZER = "bm25-snowball-en-1"
"""Recorded in a collection's metadata: a new tokenisation means a new name (and a reindex)."""
LEXICAL_VECTOR = "lexical"
"""The name of the sparse vector in the index."""
K1 = 1.2
B = 0.75
AVG_LEN = 12.0

_WORD = re.compile(r"[^\W_]+", re.UNICODE)

_STOP_TEXT = """a about above after again against all am an and any are as at be because been before being below
    between both
    but by can could did do does doing don down during each few for from further had has have having he her here
    hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off
    on once only or other our ours ourselves out over own same she should so some such than that the their theirs
    them themselves then there these they this those through to too under until up very was we were what when where
    which while who whom why will with would you your yours yourself yourselves s t ll re ve d m"""
STOP_WORDS = frozenset(_STOP_TEXT.split())
"""English function words (the customary short list) and the question words: they say what is asked, not
what about."""


@dataclass(frozen=True, slots=True)
class SparseTerms:
    """A sparse vector: term ids (unsigned 32-bit, ascending) and their weights."""

    indices: tuple[int, ...]
    values: tuple[float, ...]

    def __bool__(self) -> bool:
        return bool(self.indices)


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    return snowballstemmer.stemmer("english")


def tokens(text: str) -> list[str]:
    """Stemmed content words of `text`, in order."""
    words = [w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]
    return list(_stemmer().stemWords(words)) if words else []


def held(wanted: AbstractSet[int], indices: Iterable[int], values: Iterable[float]) -> dict[int, float]:
    """The query's terms (`wanted`) a document's sparse vector holds, each with the document's weight for it."""
    return {i: float(v) for i, v in zip(indices, values, strict=True) if i in wanted}


def term_id(stem: str) -> int:
    return zlib.crc32(stem.encode("utf-8"))


def _pack(weights: dict[int, float]) -> SparseTerms:
    ordered = sorted(weights.items())
    return SparseTerms(tuple(i for i, _ in ordered), tuple(v for _, v in ordered))


@lru_cache(maxsize=1024)
def document_terms(text: str) -> SparseTerms:
    """The BM25 document side of `text` (empty when it has no content word). Cached: a writer computes them
    while its insert runs, and the apply right after finds them."""
    counts = Counter(term_id(t) for t in tokens(text))
    length = sum(counts.values())
    norm = K1 * (1.0 - B + B * length / AVG_LEN)
    return _pack({term: tf * (K1 + 1.0) / (tf + norm) for term, tf in counts.items()})


@lru_cache(maxsize=1024)
def query_terms(text: str) -> SparseTerms:
    """The query side: each distinct content word once (the index supplies the IDF). Cached: a recall reads
    them for its search and for its scores."""
    return _pack({term_id(t): 1.0 for t in tokens(text)})

"""Content hashes: the key that tells "the text changed" from "only the metadata changed".

The relay compares the hash stored in a point's payload with the entry's current one and re-embeds only when
they differ; the embedding cache is keyed by it too. Text is NFC-normalised first so that the same words typed
on two keyboards (composed or decomposed accents) hash, and therefore embed, the same.
"""

from __future__ import annotations

import hashlib
import unicodedata


def normalise_text(text: str) -> str:
    """The canonical form of `text` that hashing and embedding both see."""
    return unicodedata.normalize("NFC", text)


def content_hash(text: str) -> str:
    """sha256 hex digest of the NFC-normalised UTF-8 text."""
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()

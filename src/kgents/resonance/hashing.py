"""Content hashing (placeholder until the resonance branch lands its own; theirs wins at merge)."""

from __future__ import annotations

import hashlib
import unicodedata


def content_hash(text: str) -> str:
    """A stable hash of the text an embedding is made from (NFC-normalised, SHA-256, hex)."""
    return hashlib.sha256(unicodedata.normalize("NFC", text).encode("utf-8")).hexdigest()

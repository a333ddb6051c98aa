"""kgents' Python face: `Memory` / `AsyncMemory`, one persona's memory in this process or through a server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kgents.memory.api import DEFAULT_TYPE, EntryRef, MemoryAPI, MemoryItem, RecallHit, SoulView

if TYPE_CHECKING:
    from kgents.memory.local import AsyncMemory
    from kgents.memory.sync import Memory

__all__ = ["DEFAULT_TYPE", "AsyncMemory", "EntryRef", "Memory", "MemoryAPI", "MemoryItem", "RecallHit", "SoulView"]


def __getattr__(name: str) -> Any:
    """`AsyncMemory` and `Memory` load the stores and the index only when first asked for."""
    if name == "AsyncMemory":
        from kgents.memory.local import AsyncMemory

        return AsyncMemory
    if name == "Memory":
        from kgents.memory.sync import Memory

        return Memory
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

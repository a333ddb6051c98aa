"""kgents' Python face: `Memory` / `AsyncMemory`, one persona's memory in this process or through a server."""

from kgents.memory.api import DEFAULT_TYPE, EntryRef, MemoryAPI, MemoryItem, RecallHit, SoulView

__all__ = ["DEFAULT_TYPE", "EntryRef", "MemoryAPI", "MemoryItem", "RecallHit", "SoulView"]

"""kgents: a durable, searchable and observable memory for the K-gent persona agent.

`from kgents import Memory` (or `AsyncMemory`) is the way in; the names load on first use, so `import kgents`
stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from kgents.garden.filters import EntryFilter
    from kgents.memory.api import MemoryItem
    from kgents.memory.factory import open_memory
    from kgents.memory.local import AsyncMemory
    from kgents.memory.remote import RemoteMemory
    from kgents.memory.sync import Memory

__all__ = ["AsyncMemory", "EntryFilter", "Memory", "MemoryItem", "RemoteMemory", "__version__", "open_memory"]

_LAZY = {
    "AsyncMemory": "kgents.memory.local",
    "Memory": "kgents.memory.sync",
    "EntryFilter": "kgents.garden.filters",
    "MemoryItem": "kgents.memory.api",
    "RemoteMemory": "kgents.memory.remote",
    "open_memory": "kgents.memory.factory",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kgents' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)

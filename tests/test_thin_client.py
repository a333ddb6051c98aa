"""A process that only talks to a kgents server imports no database driver, no numpy, no index client and no
server stack (issue 19): `from kgents import RemoteMemory` stays a thin HTTP client."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("asyncpg", "numpy", "qdrant_edge", "qdrant_client", "redis", "onnxruntime", "starlette", "uvicorn", "httpx")
STACK = ("kgents.anchor", "kgents.resonance", "kgents.server", "kgents.synapse.recall", "kgents.garden.store")

PROBE = """
import json, sys
from kgents import RemoteMemory
from kgents.memory.remote import RemoteMemory as again
assert RemoteMemory is again
print(json.dumps(sorted(sys.modules)))
"""


def test_remote_memory_imports_no_driver_and_no_numpy() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True)
    loaded = json.loads(done.stdout)
    heavy = [m for m in loaded if m.split(".")[0] in HEAVY]
    stack = [m for m in loaded if m.startswith(STACK)]
    assert not heavy, f"RemoteMemory pulled in {heavy}"
    assert not stack, f"RemoteMemory pulled in {stack}"

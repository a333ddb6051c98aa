"""A second process for the demo and the tests: `python -m kgents.kgent.probe ask QUESTION` opens a new K-gent
session on the environment's settings and prints JSON (soul recovery time and source, the answer, the entries it
cited, the recall latency); `python -m kgents.kgent.probe write N` remembers N entries, printing each id once it is
committed (a writer to kill -9)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from kgents.config import Settings


async def ask(question: str) -> dict[str, Any]:
    from kgents.kgent.session import KGent
    from kgents.memory import AsyncMemory

    async with AsyncMemory(settings=Settings.from_env()) as memory:
        kg = KGent(memory)
        began = time.perf_counter()
        soul = await kg.open()
        recovery_ms = (time.perf_counter() - began) * 1000.0
        reply = await kg.observe(question)
        await kg.close()
        return {
            "recovery_ms": recovery_ms,
            "soul_source": soul.source,
            "interactions": soul.interactions,
            "answer": reply.text,
            "cited": [e.content for e in reply.cited],
            "latency_ms": reply.latency_ms,
        }


async def write(count: int) -> None:
    from kgents.memory import AsyncMemory

    async with AsyncMemory(settings=Settings.from_env()) as memory:
        for i in range(count):
            entry = await memory.remember(f"durability probe {i}", tags=["probe"])
            sys.stdout.write(f"{entry.id}\n")
            sys.stdout.flush()


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "ask":
        sys.stdout.write(json.dumps(asyncio.run(ask(argv[1]))) + "\n")
        return 0
    if len(argv) == 2 and argv[0] == "write":
        asyncio.run(write(int(argv[1])))
        return 0
    sys.stderr.write("usage: python -m kgents.kgent.probe ask QUESTION | write N\n")
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

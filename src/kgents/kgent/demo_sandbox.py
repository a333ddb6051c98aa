"""Where `kgents demo` plays: stores of its own, so the user's memory is never touched.

A throwaway home (or `--home PATH`, which must be new or empty), and on the servers in the settings: its own
PostgreSQL schema `kgents_demo_<id>` in the same database, its own Redis key prefix `demo-<id>`, and so its own
Qdrant collections (named after that schema, or stamped with its own index identity). `tear_down` drops them all;
the command calls it on every way out (success, failure, Ctrl-C) unless the user asked to keep a `--home`.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from kgents.config import Settings
from kgents.errors import ConfigError
from kgents.synapse.queue import queue_on

if TYPE_CHECKING:
    from kgents.resonance.protocols import VectorIndex


@dataclass(frozen=True, slots=True)
class Sandbox:
    settings: Settings
    kept: bool
    """True for a home the user named: then nothing is dropped, so they can look at what the demo made."""

    def describe(self) -> str:
        s = self.settings
        parts = [f"home {s.home}"]
        if s.postgres_url:
            parts.append(f"PostgreSQL schema {s.postgres_schema}")
        if s.redis_url:
            parts.append(f"Redis prefix {s.spark_prefix}")
        if s.qdrant_url:
            parts.append("Qdrant collections of its own")
        fate = "kept for a look" if self.kept else "dropped when the demo ends"
        return f"the demo plays in stores of its own ({', '.join(parts)}; {fate}); yours are not touched"

    def to_dict(self) -> dict[str, object]:
        s = self.settings
        return {
            "home": str(s.home),
            "schema": s.postgres_schema if s.postgres_url else None,
            "spark_prefix": s.spark_prefix if s.redis_url else None,
            "kept": self.kept,
        }


def open_sandbox(user: Settings, home: Path | None) -> Sandbox:
    """The demo's settings: the user's servers, but none of their stores; a named home must be new or empty."""
    if home is not None and home.exists() and (not home.is_dir() or any(home.iterdir())):
        raise ConfigError(f"the demo needs a new or empty home, and {home} is not; name another with --home")
    tag = uuid.uuid4().hex[:8]
    target = home or Path(tempfile.mkdtemp(prefix="kgents-demo-"))
    settings = replace(
        user,
        home=target,
        persona=f"demo-{tag}",
        postgres_schema=f"kgents_demo_{tag}" if user.postgres_url else user.postgres_schema,
        spark_prefix=f"demo-{tag}" if user.redis_url else user.spark_prefix,
        server_url=None,
        server_token=None,
    )
    return Sandbox(settings, kept=home is not None)


async def tear_down(sandbox: Sandbox, index: VectorIndex | None = None) -> None:
    """Drop everything the demo made: its Qdrant collections (in `index`, else the settings' Qdrant), its schema,
    its Redis keys, its home."""
    if sandbox.kept:
        return
    s = sandbox.settings
    steps: list[Callable[[], Awaitable[None]]] = []
    if s.qdrant_url:
        steps.append(lambda: _drop_collections(s, index))
    if s.postgres_url:
        from kgents.anchor.postgres import drop_schema

        steps.append(lambda: drop_schema(s.postgres_url or "", s.postgres_schema))
    if s.redis_url:
        steps.append(lambda: _drop_keys(s.redis_url or "", s.spark_prefix))
    failed: BaseException | None = None
    try:
        for step in steps:  # each one whatever became of the one before; the first failure is raised at the end
            try:
                await step()
            except Exception as exc:
                failed = failed or exc
    finally:
        shutil.rmtree(s.home, ignore_errors=True)
    if failed is not None:
        raise failed


async def _drop_collections(settings: Settings, given: VectorIndex | None) -> None:
    """The collections of the demo's anchor: those its state names and any stamped with its index identity."""
    from kgents.errors import NotFoundError
    from kgents.garden.store import open_store
    from kgents.resonance.factory import open_index

    store = await open_store(settings)
    try:
        state = await queue_on(store.anchor).read_state()
    finally:
        await store.close()
    if state is None:
        return
    names = {t.collection for t in state.targets()}
    index = given or open_index(settings)
    try:
        if state.identity is not None:
            for info in await index.collections():
                try:
                    if await index.index_id(info.name) == state.identity.id:
                        names.add(info.name)
                except NotFoundError:
                    continue
        for name in names:
            with contextlib.suppress(NotFoundError):
                await index.drop_collection(name)
    finally:
        if given is None:
            await index.close()


async def _drop_keys(url: str, prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"kgents:{prefix}:*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()

"""Invoking a path in the default registry: `await invoke(AgentContext(settings), "self.vitals.triad.health")`."""

from __future__ import annotations

from typing import Any

from kgents.agentese.handlers import REGISTRY
from kgents.agentese.resolver import AgentContext, Args
from kgents.health.model import TriadHealth


async def invoke(ctx: AgentContext, path: str, args: Args | None = None) -> Any:
    """Resolve `path` in the default registry and run its handler."""
    return await REGISTRY.invoke(ctx, path, args)


async def read_health(ctx: AgentContext) -> TriadHealth:
    """`self.vitals.triad.health`, typed: what the CLI status, the ghost and the metrics read."""
    result = await invoke(ctx, "self.vitals.triad.health")
    if not isinstance(result, TriadHealth):
        raise TypeError(f"self.vitals.triad.health returned {type(result).__name__}")
    return result


def to_jsonable(value: Any) -> Any:
    """A handler's result as JSON-ready data."""
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) else value

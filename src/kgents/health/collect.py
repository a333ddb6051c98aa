"""`collect_health`: every part probed at once, each under a timeout; never hangs, never raises.

The seam for the server (`/metrics`, `/readyz`), the CLI, the ghost and AGENTESE: call
`await collect_health(settings)` and render the `TriadHealth` it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from functools import partial
from typing import Any

from kgents.clock import utcnow
from kgents.config import Settings
from kgents.health.levels import DEFAULT_THRESHOLDS, Thresholds
from kgents.health.model import PARTS, PartHealth, TriadHealth, unreachable
from kgents.health.probes import anchor_backend, probe_durability, probe_reflex, probe_synapse, spark_backend
from kgents.health.resonance import index_name, probe_resonance

log = logging.getLogger("kgents.health")

Probe = Callable[[Settings, Thresholds], Awaitable[PartHealth]]
DRAIN_SHARE = 0.4
"""On the embedded default, at most this share of the probe timeout goes to draining pending events first."""
DRAIN_TIMEOUT_S = 60.0
CANCEL_GRACE_S = 0.5
"""After the timeout, how long a cancelled probe may take to let go (then it is left behind)."""

_SECRET_IN_URL = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@")


def scrub(text: str) -> str:
    """Any `scheme://user:password@` in `text` with the password as `***` (errors can quote URLs)."""
    return _SECRET_IN_URL.sub(lambda m: f"{m['head']}***@", text)


def describe_error(exc: BaseException) -> str:
    """One line for a failed probe, secrets removed."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return scrub(text)


def default_probes(*, record: str | None = None) -> dict[str, Probe]:
    return {
        "durability": probe_durability,
        "resonance": partial(probe_resonance, record=record),
        "reflex": probe_reflex,
        "synapse": probe_synapse,
    }


def backend_of(name: str, settings: Settings) -> str:
    return {
        "durability": anchor_backend(settings),
        "resonance": index_name(settings),
        "reflex": spark_backend(settings),
        "synapse": "relay" if (settings.postgres_url or settings.qdrant_url) else "in-process",
    }.get(name, name)


async def collect_health(
    settings: Settings,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    *,
    probes: Mapping[str, Probe] | None = None,
    record: str | None = None,
    drain: bool = True,
) -> TriadHealth:
    """Probe every part concurrently, each within `thresholds.probe_timeout_s`. A probe that raises or runs out
    of time makes its part CRITICAL with the error. `record` names who takes the sample appended to the drift
    history (None: none is appended); `drain`: on the embedded default, apply pending events first."""
    began = time.perf_counter()
    timeout = thresholds.probe_timeout_s
    if drain and embedded_default(settings):
        await _bounded(drain_embedded(settings), timeout * DRAIN_SHARE)
    chosen = dict(probes) if probes is not None else default_probes(record=record)
    tasks = {name: asyncio.ensure_future(_timed(name, probe, settings, thresholds)) for name, probe in chosen.items()}
    _done, pending = await asyncio.wait(tasks.values(), timeout=timeout)
    for task in pending:
        task.cancel()
    if pending:
        with contextlib.suppress(Exception):
            await asyncio.wait(pending, timeout=CANCEL_GRACE_S)
    parts: list[PartHealth] = []
    for name, task in tasks.items():
        backend = backend_of(name, settings)
        if task in pending or task.cancelled():
            parts.append(unreachable(name, backend, f"{name} probe timed out after {timeout:g} s", timeout * 1000))
        elif (exc := task.exception()) is not None:
            parts.append(unreachable(name, backend, f"{backend} unreachable: {describe_error(exc)}"))
        else:
            parts.append(task.result())
    parts.sort(key=lambda p: PARTS.index(p.name) if p.name in PARTS else len(PARTS))
    return TriadHealth(tuple(parts), utcnow(), (time.perf_counter() - began) * 1000.0)


def embedded_default(settings: Settings) -> bool:
    """SQLite and Qdrant Edge: no relay runs; each command drains pending events in-process."""
    return not (settings.postgres_url or settings.qdrant_url)


async def drain_embedded(settings: Settings) -> None:
    """Apply pending events before measuring (as `garden search` does), so every part sees the same state."""
    from kgents.synapse.runtime import open_stack

    stack = await open_stack(settings)
    try:
        await stack.catch_up(DRAIN_TIMEOUT_S)
    finally:
        await stack.close()


async def _bounded(work: Coroutine[Any, Any, None], budget_s: float) -> None:
    """Run `work` for at most `budget_s`; any failure is left for the probes to report."""
    task = asyncio.ensure_future(work)
    _done, pending = await asyncio.wait([task], timeout=budget_s)
    if pending:
        task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait(pending, timeout=CANCEL_GRACE_S)
    elif (exc := task.exception()) is not None:
        log.debug("health: the in-process drain failed: %s", describe_error(exc))


async def _timed(name: str, probe: Probe, settings: Settings, thresholds: Thresholds) -> PartHealth:
    began = time.perf_counter()
    part = await probe(settings, thresholds)
    took = (time.perf_counter() - began) * 1000.0
    return PartHealth(
        part.name, part.level, scrub(part.reason), part.backend, part.figures, part.error, took, part.configured
    )

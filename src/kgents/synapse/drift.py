"""The rolling drift history in the anchor (`drift_history`, migration 0010): coherency and lag samples, bounded.

Who appends: status collection and the ghost daemon (through `collect_health(..., record=True)`) and a running
relay (at most every `RELAY_SAMPLE_S`). Each append trims the table to the newest `HISTORY_LIMIT` rows, so it
stays small and the append stays cheap.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from kgents.anchor.handle import Anchor, PostgresAnchor
from kgents.clock import utcnow

HISTORY_LIMIT = 1_000
RELAY_SAMPLE_S = 30.0
"""A running relay appends its coherency measurement at most this often."""


@dataclass(frozen=True, slots=True)
class DriftSample:
    measured_at: datetime
    source: str
    """`status`, `ghost`, `relay`, `metrics`… who took it."""
    coherency: float | None = None
    matched: int | None = None
    stale: int | None = None
    missing: int | None = None
    orphaned: int | None = None
    pending: int | None = None
    oldest_pending_s: float | None = None
    lag_p50_ms: float | None = None
    lag_p95_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["measured_at"] = self.measured_at.isoformat()
        return data

    def values(self) -> tuple[Any, ...]:
        return (
            self.measured_at,
            self.source,
            self.coherency,
            self.matched,
            self.stale,
            self.missing,
            self.orphaned,
            self.pending,
            self.oldest_pending_s,
            self.lag_p50_ms,
            self.lag_p95_ms,
        )


def sample_from_coherency(report: dict[str, Any], source: str, metrics: dict[str, Any] | None = None) -> DriftSample:
    """A sample from a coherency report's dict (and the relay metrics' dict, when known)."""
    m = metrics or {}
    return DriftSample(
        measured_at=utcnow(),
        source=source,
        coherency=_float(report.get("coherency_with_truth")),
        matched=_int(report.get("matched")),
        stale=_int(report.get("stale")),
        missing=_int(report.get("missing")),
        orphaned=_int(report.get("orphaned")),
        pending=_int(m.get("queue_depth")),
        oldest_pending_s=_float(m.get("oldest_pending_age_s")),
        lag_p50_ms=_float(m.get("latency_p50_ms")),
        lag_p95_ms=_float(m.get("latency_p95_ms")),
    )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _row(r: Any) -> DriftSample:
    stamp = r[0] if isinstance(r[0], datetime) else datetime.fromisoformat(str(r[0]))
    return DriftSample(stamp, str(r[1]), *r[2:])


def _target(anchor: Anchor) -> tuple[str, Any]:
    """("postgres", pool) or ("sqlite", Database) of an opened anchor."""
    if isinstance(anchor, PostgresAnchor):
        return "postgres", anchor.pool
    return "sqlite", anchor


INSERT_PG = (
    "INSERT INTO drift_history (measured_at, source, coherency, matched, stale, missing, orphaned, pending,"
    " oldest_pending_s, lag_p50_ms, lag_p95_ms)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
)
INSERT_SQLITE = (
    "INSERT INTO drift_history (measured_at, source, coherency, matched, stale, missing, orphaned, pending,"
    " oldest_pending_s, lag_p50_ms, lag_p95_ms)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
TRIM_PG = "DELETE FROM drift_history WHERE id <= (SELECT max(id) FROM drift_history) - $1"
TRIM_SQLITE = "DELETE FROM drift_history WHERE id <= (SELECT max(id) FROM drift_history) - ?"
SELECT_PG = (
    "SELECT measured_at, source, coherency, matched, stale, missing, orphaned, pending, oldest_pending_s,"
    " lag_p50_ms, lag_p95_ms"
    " FROM drift_history ORDER BY id DESC LIMIT $1"
)
SELECT_SQLITE = (
    "SELECT measured_at, source, coherency, matched, stale, missing, orphaned, pending, oldest_pending_s,"
    " lag_p50_ms, lag_p95_ms"
    " FROM drift_history ORDER BY id DESC LIMIT ?"
)


async def append_sample(anchor: Anchor, sample: DriftSample, limit: int = HISTORY_LIMIT) -> None:
    """Append `sample` and trim the history to the newest `limit` rows, in one transaction. `anchor`: either backend."""
    kind, target = _target(anchor)
    if kind == "postgres":
        async with target.acquire() as conn, conn.transaction():
            await conn.execute(INSERT_PG, *sample.values())
            await conn.execute(TRIM_PG, limit)
        return
    values = (sample.measured_at.isoformat(timespec="microseconds"), *sample.values()[1:])

    def work() -> None:
        with target.write() as conn:
            conn.execute(INSERT_SQLITE, values)
            conn.execute(TRIM_SQLITE, (limit,))

    await target.run(work)


async def read_history(anchor: Anchor, limit: int = 100) -> list[DriftSample]:
    """The newest `limit` samples, oldest first."""
    kind, target = _target(anchor)
    if kind == "postgres":
        rows = await target.fetch(SELECT_PG, limit)
        return [_row(tuple(r)) for r in reversed(rows)]
    found = await target.run(lambda: target.conn.execute(SELECT_SQLITE, (limit,)).fetchall())
    return [_row(r) for r in reversed(found)]

"""Written, configurable thresholds and the pure functions that turn figures into a level and a reason.

Defaults follow the design notes (the original plan's numbers) where they exist; the rest are ours and say so.
A figure that is unknown (None) never counts against a part: the part is judged by what was measured.
"""

from __future__ import annotations

from dataclasses import dataclass

from kgents.health.model import Level, Verdict

LADDER = (Level.THRIVING, Level.HEALTHY, Level.STRAINED, Level.DEGRADED)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Every boundary the health model uses. "above" bounds are exclusive (> x), "below" ones too (< x)."""

    # Durability (notes): pool availability above, commit latency below: THRIVING, HEALTHY, STRAINED
    pool_available_above: tuple[float, float, float] = (0.5, 0.2, 0.1)
    commit_ms_below: tuple[float, float, float] = (20.0, 100.0, 500.0)
    # Resonance (notes): coherency above, search latency below: THRIVING, HEALTHY, STRAINED, DEGRADED
    coherency_above: tuple[float, float, float, float] = (0.9, 0.7, 0.5, 0.2)
    search_ms_below: tuple[float, float, float] = (50.0, 200.0, 1000.0)
    # Reflex (notes): hit rate above, memory pressure below: THRIVING, HEALTHY, STRAINED
    hit_rate_above: tuple[float, float, float] = (0.9, 0.7, 0.5)
    memory_pressure_below: tuple[float, float, float] = (0.7, 0.9, 0.95)
    min_lookups: int = 20
    """Fewer cache lookups than this are too few to judge a hit rate by."""
    # Synapse (ours): oldest pending event age (s) and commit→applied p95 (ms) below: THRIVING, HEALTHY, STRAINED,
    # DEGRADED (older: CRITICAL); dead letters cap the part at STRAINED; a half-open breaker at DEGRADED, open is
    # CRITICAL; a backlog older than relay_grace_s with no live relay (where one is expected) is DEGRADED.
    pending_age_s_below: tuple[float, float, float, float] = (5.0, 30.0, 120.0, 600.0)
    lag_p95_ms_below: tuple[float, float, float] = (1_000.0, 5_000.0, 30_000.0)
    relay_grace_s: float = 10.0
    # Probes
    probe_timeout_s: float = 5.0


DEFAULT_THRESHOLDS = Thresholds()


def rung_above(value: float | None, bounds: tuple[float, ...]) -> int:
    """How far down the ladder `value` sits when higher is better: 0 if above bounds[0], … len(bounds) if none."""
    if value is None:
        return 0
    return next((i for i, bound in enumerate(bounds) if value > bound), len(bounds))


def rung_below(value: float | None, bounds: tuple[float, ...]) -> int:
    """As `rung_above` when lower is better."""
    if value is None:
        return 0
    return next((i for i, bound in enumerate(bounds) if value < bound), len(bounds))


def at_rung(rung: int) -> Level:
    return LADDER[rung] if rung < len(LADDER) else Level.CRITICAL


def pct(value: float) -> str:
    """`33 %` (whole percent, the way the reasons print ratios)."""
    return f"{value * 100:.0f} %"


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def durability_verdict(
    commit_ms: float | None, pool_available: float | None, t: Thresholds = DEFAULT_THRESHOLDS
) -> Verdict:
    pool = rung_above(pool_available, t.pool_available_above)
    commit = rung_below(commit_ms, t.commit_ms_below)
    level = at_rung(max(pool, commit))
    if pool > commit:
        return Verdict(level, f"anchor pool nearly exhausted: {pct(pool_available or 0.0)} of connections free")
    if commit > 0:
        return Verdict(level, f"anchor commits slow: {ms(commit_ms)}")
    return Verdict(level, f"anchor reachable, commit {ms(commit_ms)}")


def resonance_verdict(
    coherency: float | None,
    search_ms: float | None,
    index_name: str,
    counts: dict[str, int] | None = None,
    t: Thresholds = DEFAULT_THRESHOLDS,
) -> Verdict:
    """Coherency (measured, matched / union) and the search probe; the reason names the drift in entries."""
    if coherency is None:
        return Verdict(Level.UNKNOWN, f"{index_name} coherency could not be measured")
    drift = rung_above(coherency, t.coherency_above)
    search = rung_below(search_ms, t.search_ms_below)
    level = at_rung(max(drift, search))
    if drift >= search and drift > 0:
        return Verdict(level, drift_reason(index_name, coherency, counts or {}))
    if search > 0:
        return Verdict(level, f"{index_name} search slow: {ms(search_ms)}")
    return Verdict(level, f"{index_name} coherent with the anchor ({pct(coherency)}), search {ms(search_ms)}")


def drift_reason(index_name: str, coherency: float, counts: dict[str, int]) -> str:
    """`Qdrant drift affecting search quality: 33 % of entries stale (1 missing)`."""
    detail = ", ".join(f"{counts[k]} {k}" for k in ("stale", "missing", "orphaned") if counts.get(k))
    text = f"{index_name} drift affecting search quality: {pct(1.0 - coherency)} of entries stale"
    return f"{text} ({detail})" if detail else text


def reflex_verdict(
    hit_rate: float | None, memory_pressure: float | None, lookups: int, t: Thresholds = DEFAULT_THRESHOLDS
) -> Verdict:
    """Hit rate (judged from `t.min_lookups` lookups on) and memory pressure (None: no limit)."""
    rate = hit_rate if lookups >= t.min_lookups else None
    hits = rung_above(rate, t.hit_rate_above)
    memory = rung_below(memory_pressure, t.memory_pressure_below)
    level = at_rung(min(max(hits, memory), len(LADDER) - 1))
    if hits >= memory and hits > 0:
        return Verdict(level, f"Redis hit rate low: {pct(rate or 0.0)}")
    if memory > 0:
        return Verdict(level, f"Redis memory pressure high: {pct(memory_pressure or 0.0)}")
    rate_text = "too few lookups to judge the hit rate" if rate is None else f"hit rate {pct(rate)}"
    memory_text = "no memory limit" if memory_pressure is None else f"memory pressure {pct(memory_pressure)}"
    return Verdict(level, f"Redis {rate_text}, {memory_text}")


def synapse_verdict(
    *,
    pending: int,
    oldest_pending_s: float | None,
    lag_p95_ms: float | None,
    dead_letters: int,
    circuit: str,
    relays_alive: int,
    relay_expected: bool,
    t: Thresholds = DEFAULT_THRESHOLDS,
) -> Verdict:
    """The relay: breaker, backlog age, lag, dead letters, and whether a relay runs where one is expected. Without
    a relay expected (the embedded default drains in-process at each command), backlog age and lag are shown but
    not judged."""
    if circuit == "OPEN":
        return Verdict(Level.CRITICAL, "Synapse circuit open: the index is failing, events wait in the outbox")
    candidates: list[tuple[int, str]] = [(0, "")]
    if relay_expected:  # on the embedded default events wait for the next command by design: not a lag
        age = oldest_pending_s if pending else None
        age_rung = rung_below(age, t.pending_age_s_below)
        candidates.append((age_rung, f"Synapse backlog: {pending:,} events pending, oldest {age or 0.0:.1f} s"))
        candidates.append((rung_below(lag_p95_ms, t.lag_p95_ms_below), f"Synapse lag p95 {ms(lag_p95_ms)}"))
    if circuit == "HALF_OPEN":
        candidates.append((3, "Synapse circuit half-open: the index is recovering"))
    if dead_letters:
        candidates.append((2, f"Synapse dead letters: {dead_letters:,} events gave up"))
    if relay_expected and pending and not relays_alive and (oldest_pending_s or 0.0) > t.relay_grace_s:
        candidates.append(
            (3, f"Synapse relay not running: {pending:,} events pending, oldest {oldest_pending_s or 0.0:.1f} s")
        )
    # ties go to the later (more specific) candidate: a relay that is not running explains its backlog
    rung, reason = max(reversed(candidates), key=lambda c: c[0])
    if rung == 0 and not relay_expected and pending:
        reason = (
            f"Synapse: {pending:,} events wait for the next command that opens the index (no relay runs; the"
            f" embedded default drains in-process), lag p95 {ms(lag_p95_ms)}"
        )
    elif rung == 0:
        reason = f"Synapse keeping up: {pending:,} pending, lag p95 {ms(lag_p95_ms)}, circuit {circuit}"
    return Verdict(at_rung(rung), reason)

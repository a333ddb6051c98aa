"""The relay's decisions as small pure functions: retry backoff, dead letters, liveness (its breaker is
`kgents.breaker`, shared with the soul).

Kept free of I/O and clocks (time is always passed in) so each rule is unit-tested on its own and reads the
same in the relay, in `kgents synapse status` and in the health model.
"""

from __future__ import annotations

import math


def backoff_delay(attempts: int, *, base_s: float = 0.5, cap_s: float = 300.0) -> float:
    """Seconds to wait before attempt `attempts + 1`: base · 2^(attempts-1), capped (attempts ≥ 1)."""
    if attempts < 1:
        return 0.0
    exponent = min(attempts - 1, 62)
    return min(cap_s, base_s * math.pow(2.0, exponent))


def should_dead_letter(attempts: int, max_attempts: int) -> bool:
    """True once an entry has failed `max_attempts` times: it leaves the queue for the dead-letter table."""
    return attempts >= max_attempts


def is_alive(heartbeat_age_s: float | None, interval_s: float, margin_s: float | None = None) -> bool:
    """A relay is alive while its last heartbeat is younger than its interval plus a margin (default 2
    beats)."""
    if heartbeat_age_s is None:
        return False
    margin = 2.0 * interval_s if margin_s is None else margin_s
    return heartbeat_age_s < interval_s + margin

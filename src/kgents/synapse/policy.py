"""The relay's decisions as small pure functions: retry backoff, the circuit breaker, liveness.

Kept free of I/O and clocks (time is always passed in) so each rule is unit-tested on its own and reads the
same in the relay, in `kgents synapse status` and in the health model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


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


class CircuitState(StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


@dataclass(slots=True)
class CircuitBreaker:
    """Stops hammering an index that is down: CLOSED → (threshold failures in a row) → OPEN → (reset timeout)
    → HALF_OPEN, where one trial decides: success closes it, failure opens it again for another timeout."""

    failure_threshold: int = 3
    reset_timeout_s: float = 2.0
    state: CircuitState = CircuitState.CLOSED
    failures: int = 0
    opened_at: float | None = None
    trips: int = 0

    def allow(self, now: float) -> bool:
        """May a call go to the index now? Moves OPEN → HALF_OPEN once the timeout has passed."""
        if self.state is CircuitState.OPEN:
            if self.opened_at is not None and now - self.opened_at >= self.reset_timeout_s:
                self.state = CircuitState.HALF_OPEN
                return True
            return False
        return True

    def retry_in(self, now: float) -> float:
        """Seconds until an OPEN breaker lets a trial through (0 when calls are allowed)."""
        if self.state is not CircuitState.OPEN or self.opened_at is None:
            return 0.0
        return max(0.0, self.opened_at + self.reset_timeout_s - now)

    def record_success(self) -> None:
        self.state = CircuitState.CLOSED
        self.failures = 0
        self.opened_at = None

    def record_failure(self, now: float) -> None:
        self.failures += 1
        if self.state is CircuitState.HALF_OPEN or self.failures >= self.failure_threshold:
            if self.state is not CircuitState.OPEN:
                self.trips += 1
            self.state = CircuitState.OPEN
            self.opened_at = now

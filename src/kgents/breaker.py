"""The one circuit breaker: the relay's around the index, the soul's around the Spark (Redis).

CLOSED → (`failure_threshold` failures in a row) → OPEN → (the cool-down) → HALF_OPEN, where exactly one
caller, the first to ask, makes a trial and every other caller is refused until its outcome is recorded: a
success closes the breaker, a failure opens it again, for a longer cool-down when it backs off
(`max_cooldown_s`: each re-opening doubles the cool-down up to it). A trial that ends with no verdict (the guarded
thing was never reached) is given back with `release()`, so the next caller makes it.

Pure: no I/O and no clock of its own; every time is passed in (the caller's monotonic clock), so tests need no
sleeps. The state names are what status, health and Prometheus show.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


@dataclass(slots=True)
class Breaker:
    """Keeps calls off a failing server: a stalled one costs one trial per cool-down, not one timeout per call."""

    failure_threshold: int = 1
    """Failures in a row that open a closed breaker."""
    cooldown_s: float = 1.0
    """How long it stays open after it opens from closed."""
    max_cooldown_s: float | None = None
    """Backoff: each failure while not closed doubles the cool-down, up to this; None: the same cool-down always."""
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    """Failures since the last success."""
    opened_at: float | None = None
    pause_s: float = 0.0
    """The current cool-down (0 while closed)."""
    trips: int = 0
    """Times it went to OPEN from CLOSED or HALF_OPEN."""
    trial_out: bool = False
    """HALF_OPEN: a caller is making the trial; the others are refused."""

    @property
    def retry_at(self) -> float:
        """When an OPEN breaker lets its trial through (0.0 when it is not open)."""
        if self.state is not BreakerState.OPEN or self.opened_at is None:
            return 0.0
        return self.opened_at + self.pause_s

    def retry_in(self, now: float) -> float:
        """Seconds until an OPEN breaker lets a trial through (0 when it is not open)."""
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self.retry_at - now)

    def allow(self, now: float) -> bool:
        """May this caller go to the server now? Once the cool-down is over, the first to ask gets the trial
        (OPEN → HALF_OPEN); while it is out, everyone else is refused."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN:
            if now < self.retry_at:
                return False
            self.state = BreakerState.HALF_OPEN
        if self.trial_out:
            return False
        self.trial_out = True
        return True

    def release(self) -> None:
        """The trial ended with no verdict (the server was not reached): the next caller to ask makes it. Does
        nothing once a verdict was recorded."""
        if self.state is BreakerState.HALF_OPEN:
            self.trial_out = False

    def record_success(self) -> bool:
        """The server answered: close. True if it was not closed (the caller may say it recovered)."""
        recovered = self.state is not BreakerState.CLOSED
        self.state = BreakerState.CLOSED
        self.failures = 0
        self.opened_at = None
        self.pause_s = 0.0
        self.trial_out = False
        return recovered

    def record_failure(self, now: float) -> bool:
        """The server failed. Closed: open at the threshold. Half-open (the trial) or open (a call let through
        before it opened): open again from `now`, for a longer cool-down when it backs off. True only when this
        failure opened a closed breaker (the caller warns once per outage)."""
        self.failures += 1
        if self.state is BreakerState.CLOSED:
            if self.failures < self.failure_threshold:
                return False
            self._open(now, self.cooldown_s)
            return True
        self._open(now, self._longer_pause())
        return False

    def _open(self, now: float, pause_s: float) -> None:
        if self.state is not BreakerState.OPEN:
            self.trips += 1
        self.state = BreakerState.OPEN
        self.opened_at = now
        self.pause_s = pause_s
        self.trial_out = False

    def _longer_pause(self) -> float:
        if self.max_cooldown_s is None:
            return self.cooldown_s
        return min(self.max_cooldown_s, max(self.pause_s, self.cooldown_s) * 2)

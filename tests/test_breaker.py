"""The one circuit breaker (`kgents.breaker`), the relay's and the soul's: its state machine on a passed-in clock."""

from __future__ import annotations

from kgents.breaker import Breaker, BreakerState


def test_half_open_lets_one_trial_through_not_every_caller() -> None:
    b = Breaker(failure_threshold=1, cooldown_s=1.0)
    b.record_failure(10.0)
    assert not b.allow(10.5), "open: every caller refused"
    assert b.allow(11.0) and b.state is BreakerState.HALF_OPEN, "the cool-down is over: the first caller tries"
    assert not b.allow(11.0) and not b.allow(11.1) and not b.allow(60.0), "the others wait for the trial's outcome"
    b.record_failure(11.2)  # the trial failed: open again
    assert b.state is BreakerState.OPEN and not b.allow(12.1)
    assert b.allow(12.2) and not b.allow(12.2)
    b.record_success()  # the trial succeeded: closed, everyone through
    assert b.state is BreakerState.CLOSED and b.allow(12.3) and b.allow(12.3)


def test_a_trial_given_back_without_a_verdict_goes_to_the_next_caller() -> None:
    b = Breaker(failure_threshold=1, cooldown_s=1.0)
    b.record_failure(0.0)
    assert b.allow(1.0) and not b.allow(1.0)
    b.release()  # the trial never reached the server (nothing to do, a cancelled call, …)
    assert b.state is BreakerState.HALF_OPEN
    assert b.allow(1.1) and not b.allow(1.1), "one trial again, not every caller"
    b.record_success()
    b.release()  # after a verdict: nothing to give back
    assert b.state is BreakerState.CLOSED and b.allow(1.2)


def test_the_relays_breaker_opens_after_n_failures_in_a_row_for_a_fixed_timeout() -> None:
    b = Breaker(failure_threshold=2, cooldown_s=5.0)
    assert b.allow(0.0) and b.state is BreakerState.CLOSED
    b.record_failure(0.0)
    assert b.state is BreakerState.CLOSED
    b.record_failure(1.0)
    assert b.state is BreakerState.OPEN and b.trips == 1
    assert not b.allow(3.0)
    assert b.retry_in(3.0) == 3.0
    assert b.allow(6.0) and b.state is BreakerState.HALF_OPEN
    b.record_failure(6.0)  # the trial failed: open again for a full timeout (no backoff)
    assert b.state is BreakerState.OPEN and not b.allow(10.0) and b.trips == 2
    assert b.allow(11.0) and b.state is BreakerState.HALF_OPEN
    b.record_success()
    assert b.state is BreakerState.CLOSED and b.failures == 0


def test_success_resets_the_failure_count() -> None:
    b = Breaker(failure_threshold=3)
    b.record_failure(0.0)
    b.record_failure(0.0)
    b.record_success()
    b.record_failure(0.0)
    assert b.state is BreakerState.CLOSED


def test_the_souls_breaker_pauses_after_a_failure_doubles_while_it_lasts_and_closes_on_success() -> None:
    b = Breaker(failure_threshold=1, cooldown_s=1.0, max_cooldown_s=4.0)
    assert b.allow(0.0) and b.state is BreakerState.CLOSED
    assert b.record_failure(10.0)  # the first failure opens it (the caller warns once)
    assert not b.allow(10.5) and b.allow(11.0)
    assert not b.record_failure(11.0)  # still down: no second warning, a longer pause
    assert not b.allow(12.9) and b.allow(13.0)
    b.record_failure(13.0)
    b.record_failure(17.0)  # a call let through before it opened, failing late: the pause restarts, longer
    assert b.retry_at == 21.0  # capped at 4 s
    assert b.record_success() and b.state is BreakerState.CLOSED and b.allow(17.1)
    assert not b.record_success()


def test_a_late_failure_while_open_restarts_the_same_timeout_without_backoff() -> None:
    b = Breaker(failure_threshold=1, cooldown_s=2.0)
    b.record_failure(0.0)
    b.record_failure(1.0)
    assert b.state is BreakerState.OPEN and b.trips == 1 and b.retry_at == 3.0

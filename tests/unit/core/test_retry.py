"""The one retry policy: backoff delays, and calls retried on a fake clock (nothing sleeps)."""

from __future__ import annotations

import pytest

from astara.core.requeue import Requeue
from astara.core.retry import Backoff, call_with_retry


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_delays_double_up_to_the_cap_with_equal_jitter():
    backoff = Backoff(base=1, cap=10)
    assert [backoff.nominal(n) for n in range(6)] == [1, 2, 4, 8, 10, 10]
    assert [backoff.delay(n, rand=lambda: 0.0) for n in range(5)] == [0.5, 1, 2, 4, 5]
    assert [backoff.delay(n, rand=lambda: 0.999) for n in range(5)] == pytest.approx(
        [1, 2, 4, 8, 10], rel=1e-3
    )
    assert backoff.nominal(10_000) == 10  # no overflow after many failures


def test_an_inconsistent_backoff_is_refused():
    with pytest.raises(ValueError):
        Backoff(base=5, cap=1)


def test_a_transient_error_is_retried_with_growing_delays():
    clock, calls = Clock(), []

    def flaky() -> str:
        calls.append(clock.now)
        if len(calls) < 3:
            raise ConnectionError("refused")
        return "ok"

    result = call_with_retry(
        "flaky",
        flaky,
        transient=lambda e: isinstance(e, ConnectionError),
        backoff=Backoff(base=1, cap=8),
        attempts=5,
        sleep=clock.sleep,
        clock=clock,
        rand=lambda: 0.5,
    )
    assert result == "ok" and clock.slept == [0.75, 1.5]


def test_a_permanent_error_and_the_last_attempt_are_raised():
    clock = Clock()
    with pytest.raises(KeyError):
        call_with_retry(
            "lookup",
            lambda: {}["x"],
            transient=lambda e: isinstance(e, ConnectionError),
            backoff=Backoff(),
            attempts=5,
            sleep=clock.sleep,
        )
    assert clock.slept == []

    def down() -> None:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        call_with_retry(
            "down",
            down,
            transient=lambda e: True,
            backoff=Backoff(base=1, cap=1),
            attempts=3,
            sleep=clock.sleep,
            rand=lambda: 0.0,
        )
    assert clock.slept == [0.5, 0.5]


def test_the_deadline_bounds_the_total_wait():
    clock = Clock()

    def down() -> None:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        call_with_retry(
            "down",
            down,
            transient=lambda e: True,
            backoff=Backoff(base=1, cap=100),
            attempts=100,
            deadline=10,
            sleep=clock.sleep,
            clock=clock,
            rand=lambda: 0.999,
        )
    assert sum(clock.slept) <= 10 and len(clock.slept) == 3  # ~1 + 2 + 4; 8 more is too late


def test_the_requeue_counts_failures_in_a_row_and_starts_over_on_success():
    requeue = Requeue(rand=lambda: 0.0)
    backoff = Backoff(base=2, cap=5)
    assert requeue.failed("CreateInstance", 100.0, backoff) == 1.0
    assert requeue.failed("ConfigureInstance", 101.0, backoff) == 2.0
    assert (requeue.failures, requeue.step, requeue.next_at) == (2, "ConfigureInstance", 103.0)
    requeue.fired()
    assert requeue.next_at is None and requeue.failures == 2
    requeue.succeeded()
    assert requeue.failed("Alive", 200.0, backoff) == 1.0

"""The one retry policy of Astara: exponential backoff with jitter and a cap.

:class:`Backoff` says how long to wait before attempt ``n`` again; :func:`call_with_retry`
sends a call again after an error the caller calls transient, up to a number of attempts and a
deadline. The orchestrator's per-resource requeue (:mod:`astara.core.requeue`) and every adapter
calling an external service (Nova, Neutron, the database) use these, so there is one formula.

Pure Python on purpose: :mod:`astara.core` imports no third-party library, and the requeue is
not a blocking loop (it schedules a timer), which a retry library's decorator cannot express.
Time and randomness are injectable, so tests use a fake clock and never sleep.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

LOG = logging.getLogger(__name__)

T = TypeVar("T")
_MAX_EXPONENT = 60  # base * factor**60 is past any cap; keeps the power finite


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays growing by ``factor`` from ``base`` up to ``cap`` seconds, with "equal jitter".

    The delay before retry ``n`` (0-based) is ``d/2 + uniform(0, d/2)`` with
    ``d = min(cap, base * factor**n)``: never less than half the nominal delay (progress is
    bounded), and spread enough that resources failing together do not retry together.
    """

    base: float = 1.0
    cap: float = 60.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        if self.base < 0 or self.cap < self.base or self.factor < 1:
            raise ValueError(f"invalid backoff {self}: need 0 <= base <= cap and factor >= 1")

    def nominal(self, attempt: int) -> float:
        """The delay before retry ``attempt`` without jitter."""
        return min(self.cap, self.base * self.factor ** min(max(attempt, 0), _MAX_EXPONENT))

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """The jittered delay before retry ``attempt`` (``rand()`` in [0, 1))."""
        half = self.nominal(attempt) / 2
        return half + half * rand()


def call_with_retry(
    what: str,
    call: Callable[[], T],
    *,
    transient: Callable[[Exception], bool],
    backoff: Backoff,
    attempts: int,
    deadline: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rand: Callable[[], float] = random.random,
) -> T:
    """``call()``, sent again after an exception ``transient`` accepts.

    Gives up (re-raising the last exception) after ``attempts`` calls in all, or when the next
    wait would end more than ``deadline`` seconds after the first call. Every retry is logged
    with ``what``, the error and the delay.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    give_up_at = None if deadline is None else clock() + deadline
    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:
            if attempt == attempts - 1 or not transient(exc):
                raise
            wait = backoff.delay(attempt, rand)
            if give_up_at is not None and clock() + wait > give_up_at:
                raise
            LOG.info(
                "%s failed (%s); trying again in %.2fs (%d/%d)",
                what,
                exc,
                wait,
                attempt + 2,
                attempts,
            )
            sleep(wait)
    raise AssertionError("unreachable")

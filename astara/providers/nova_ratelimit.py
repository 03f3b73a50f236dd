"""A token bucket limiting how many appliance servers one orchestrator process asks Nova for."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class BuildRateLimiter:
    """At most ``per_minute`` builds a minute on average, bursts up to ``burst``.

    ``acquire`` blocks the calling worker thread until a build may start; other threads keep
    working on other resources. ``per_minute <= 0`` disables the limit.
    """

    def __init__(
        self,
        per_minute: float,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.per_second = per_minute / 60.0
        self.burst = max(1, burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(self.burst)
        self._last = clock()
        self._lock = threading.Lock()

    def _reserve(self) -> float:
        """Take a token now or reserve the next one; the seconds to wait for it."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.per_second)
            self._last = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.per_second

    def acquire(self) -> float:
        """Wait for a build slot; returns the seconds waited."""
        if self.per_second <= 0:
            return 0.0
        wait = self._reserve()
        if wait > 0:
            self._sleep(wait)
        return wait

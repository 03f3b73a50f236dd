"""When a resource whose step failed is worked again (the controller's requeue).

The orchestrator is level-triggered: an event is only a hint, and every run reads the desired
state again. So a failed step (a boot the provider refused, an appliance API that did not
answer, Neutron unreachable while building the configuration) needs no particular event to be
repaired, only another run: :class:`Requeue` says when, exponentially later after each failure
in a row (:class:`~astara.core.retry.Backoff`, jittered and capped), and starts over after a
success. Any event arriving meanwhile runs the resource at once.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from astara.core.retry import Backoff


@dataclass(slots=True)
class Requeue:
    """One resource's failures in a row and its next retry."""

    rand: Callable[[], float] = random.random
    failures: int = 0  # failed runs since the last success
    step: str | None = None  # the step that failed last
    next_at: float | None = None  # when the retry is due (clock time), None: none planned

    def failed(self, step: str, now: float, backoff: Backoff) -> float:
        """Count a failure of ``step`` at ``now``; the delay before the retry."""
        delay = backoff.delay(self.failures, self.rand)
        self.failures += 1
        self.step = step
        self.next_at = now + delay
        return delay

    def succeeded(self) -> None:
        """The resource converged: the next failure waits ``base`` again."""
        self.failures, self.step, self.next_at = 0, None, None

    def fired(self) -> None:
        """The retry ran (or an event ran the resource first): none planned any more."""
        self.next_at = None

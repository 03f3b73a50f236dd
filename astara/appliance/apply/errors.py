"""What applying a configuration document can fail with."""

from __future__ import annotations

from typing import Any


class PreconditionFailed(Exception):
    """If-Match named another document than the one the box runs (``args[0]``: its ETag)."""


class ResolveError(ValueError):
    """The document names NICs this box does not have; ``errors`` are 422 details."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} unknown interface(s)")
        self.errors = errors


class PendingError(Exception):
    """A step's transaction that ran in the background failed (the cause says why)."""

    def __init__(self, step: str) -> None:
        super().__init__(step)
        self.step = step


class ApplyError(RuntimeError):
    """A step failed; the previous configuration was put back."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"applying {step} failed: {reason}; previous configuration restored")
        self.step = step
        self.reason = reason

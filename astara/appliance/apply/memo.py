"""The one memo rule of the steps: a step whose inputs hash as they did at its last success
is not run again; a failure forgets everything (the next apply converges every step)."""

from __future__ import annotations

from collections.abc import Hashable


class Memo:
    """Step name -> the content hash of the inputs it last converged to.

    Only hashes are kept, not the inputs: the memo holds no document alive. The inputs are
    made of the document's text, numbers and frozen values (see :mod:`.derive`), whose hashes
    are keyed per process (strings: SipHash), so a tenant cannot aim at a collision.
    """

    def __init__(self) -> None:
        self._done: dict[str, int] = {}

    def unchanged(self, step: str, inputs: Hashable) -> bool:
        """Did ``step`` last succeed with these very inputs?"""
        return self._done.get(step) == hash(inputs)

    def remember(self, step: str, inputs: Hashable) -> None:
        """``step`` converged the box to ``inputs``."""
        self._done[step] = hash(inputs)

    def forget(self) -> None:
        """A step failed (the box may be anywhere): every step runs at the next apply."""
        self._done.clear()

    def __bool__(self) -> bool:
        return bool(self._done)

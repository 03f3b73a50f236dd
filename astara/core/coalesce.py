"""Coalescing a resource's queue of actions before the state machine acts (DESIGN §4).

Rules: a DELETE anywhere wins (and empties the queue); REBUILD absorbs CREATE and UPDATE;
CREATE absorbs UPDATE; a POLL collapses into any real action next to it; a run of one action
collapses to one. Anything else (e.g. READ between two UPDATEs) keeps its order.
"""

from __future__ import annotations

from collections.abc import Iterable

from astara.core.events import Action

MACHINE_ACTIONS = frozenset(
    {Action.CREATE, Action.READ, Action.UPDATE, Action.DELETE, Action.POLL, Action.REBUILD}
)
_RANK = {Action.UPDATE: 1, Action.CREATE: 2, Action.REBUILD: 3}


def merge(first: Action, second: Action) -> Action | None:
    """The one action doing the work of ``first`` then ``second``, or None if they differ."""
    if first is second:
        return first
    if first is Action.POLL:
        return second
    if second is Action.POLL:
        return first
    if first in _RANK and second in _RANK:
        return first if _RANK[first] >= _RANK[second] else second
    return None


def coalesce(pending: list[Action]) -> Action | None:
    """Take the next action off ``pending`` (in place), merging what can be merged into it."""
    if not pending:
        return None
    if Action.DELETE in pending:
        pending.clear()
        return Action.DELETE
    action = pending.pop(0)
    while pending:
        merged = merge(action, pending[0])
        if merged is None:
            break
        action = merged
        del pending[0]
    return action


def coalesce_all(actions: Iterable[Action]) -> list[Action]:
    """The sequence of actions a queue holding ``actions`` will run (for tests and reports)."""
    pending = list(actions)
    out: list[Action] = []
    while (action := coalesce(pending)) is not None:
        out.append(action)
    return out

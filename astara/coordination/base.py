"""The coordination interface: what the orchestrator needs of a coordination service."""

from __future__ import annotations

from typing import Protocol


class CoordinationError(Exception):
    """The coordination service could not be reached or refused an operation."""


class Coordinator(Protocol):
    """One member's connection to a coordination service group.

    Every method but :attr:`member_id` talks to the service and raises
    :class:`CoordinationError` when it cannot.
    """

    member_id: str

    def join(self) -> None:
        """Connect, create the group if it does not exist, and join it."""

    def heartbeat(self) -> None:
        """Tell the service this member is alive (call every heartbeat interval)."""

    def members(self) -> frozenset[str]:
        """The live members of the group, this one included once joined."""

    def leave(self) -> None:
        """Leave the group and disconnect (best effort; never raises)."""

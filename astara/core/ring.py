"""Which cluster member manages a resource: consistent hashing over the live members.

Each member is placed on a ring of 2**64 points at :data:`REPLICAS` pseudo-random positions
(virtual nodes); a resource belongs to the member of the first position at or after the hash
of its id. Every id has exactly one owner among the members, every member computes the same
owner from the same member set (the hash is stable across processes, unlike ``hash``), and a
member joining or leaving moves only about 1/N of the ids: those between its own positions and
their predecessors.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable

REPLICAS = 128  # virtual nodes per member: with 3 members, each share stays within ~15% of 1/3


def _point(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


class HashRing:
    """An immutable ring over ``members`` (member ids; duplicates count once)."""

    def __init__(self, members: Iterable[str], replicas: int = REPLICAS) -> None:
        self.members: frozenset[str] = frozenset(members)
        ring = sorted(
            (_point(f"{member}#{n}"), member) for member in self.members for n in range(replicas)
        )
        self._points = [point for point, _ in ring]
        self._owners = [member for _, member in ring]

    def owner(self, resource_id: str) -> str | None:
        """The member managing ``resource_id``; None when the ring has no member."""
        if not self._points:
            return None
        index = bisect.bisect_left(self._points, _point(resource_id))
        return self._owners[index % len(self._owners)]

    def owned_by(self, member: str, resource_ids: Iterable[str]) -> list[str]:
        """Those of ``resource_ids`` that ``member`` manages."""
        return [rid for rid in resource_ids if self.owner(rid) == member]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HashRing) and other.members == self.members

    def __hash__(self) -> int:
        return hash(self.members)

    def __repr__(self) -> str:
        return f"HashRing({sorted(self.members)})"

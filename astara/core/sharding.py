"""Sharding: which worker process owns a resource (by its id, or its tenant's id)."""

from __future__ import annotations

import hashlib


def shard_for(key: str, shards: int) -> int:
    """A stable shard index in ``range(shards)`` for ``key`` (a resource or tenant id).

    Stable across processes and restarts (Python's ``hash`` is salted per process), so every
    event of a resource reaches the same worker and its machines never move while it runs.
    """
    if shards <= 1:
        return 0
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards

"""Tenant sharding: which worker process owns a tenant's resources."""

from __future__ import annotations

import hashlib


def shard_for(tenant_id: str, shards: int) -> int:
    """A stable shard index in ``range(shards)`` for ``tenant_id``.

    Stable across processes and restarts (Python's ``hash`` is salted per process), so every
    event of a tenant reaches the same worker and its machines never move while it runs.
    """
    if shards <= 1:
        return 0
    digest = hashlib.blake2b(tenant_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards

"""What the orchestrator remembers of a pushed configuration document (DESIGN §5): its floating
IPs and one digest per section, to tell which parts of two documents differ without keeping
the documents (the drift check)."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping
from typing import Any


def floating_ips(document: Mapping[str, Any]) -> tuple[str, ...]:
    """The floating IP addresses a configuration document holds."""
    config = document.get("configuration", document)
    entries = config.get("floating_ips") or () if isinstance(config, Mapping) else ()
    return tuple(str(e["floating_ip"]) for e in entries if isinstance(e, Mapping))


def document_digests(document: Mapping[str, Any]) -> dict[str, str]:
    """A digest of each top-level section of a configuration document."""
    config = document.get("configuration", document)
    sections = dict(config) if isinstance(config, Mapping) else {"configuration": config}
    sections.update({f"@{k}": v for k, v in document.items() if k != "configuration"})
    return {
        key: hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
        for key, value in sections.items()
    }


def changed_sections(pushed: Mapping[str, str], now: Mapping[str, str]) -> list[str]:
    """The sections whose digests differ between two :func:`document_digests` (sorted)."""
    return sorted(k for k in now.keys() | pushed.keys() if now.get(k) != pushed.get(k))


class PushedDocument:
    """The memory of the last document pushed to an appliance, and its drift-check schedule."""

    __slots__ = ("digests", "due_at", "floating_ips")

    def __init__(self, document: Mapping[str, Any], now: float, period: float) -> None:
        self.digests = document_digests(document)
        self.floating_ips = floating_ips(document)
        self.due_at = 0.0
        self.reschedule(now, period)

    def reschedule(self, now: float, period: float) -> None:
        # Spread over +-10% so that appliances configured together are not all read at once.
        self.due_at = now + period * random.uniform(0.9, 1.1)

    def check_due(self, now: float, period: float) -> bool:
        """Whether a drift check is due now (``period`` 0: never); if so, plan the next one."""
        if not period or now < self.due_at:
            return False
        self.reschedule(now, period)
        return True

    def differs(self, document: Mapping[str, Any]) -> str | None:
        """What differs in ``document`` from this one (None: nothing)."""
        changed = changed_sections(self.digests, document_digests(document))
        return f"{', '.join(changed)} differ from the last pushed document" if changed else None

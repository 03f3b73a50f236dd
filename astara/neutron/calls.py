"""Count the requests the orchestrator sends to Neutron, by method and path template.

:class:`ApiCalls` hooks the ``requests`` session under a connection's keystoneauth session, so
every HTTP request is counted once, whichever openstacksdk call sent it (pagination and
retries included). Ids in the path become ``{id}``: ``GET /v2.0/routers/{id}``. Workers export
the counts in their report (``astara_workers_workers_neutron_api_calls`` in /metrics), and
benchmarks divide them by the routers created or the interfaces added.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

_ID = re.compile(r"^[0-9a-fA-F]{8}(-?[0-9a-fA-F]{4}){3}-?[0-9a-fA-F]{12}$")


def request_key(method: str, url: str) -> str:
    """``GET /v2.0/routers/{id}`` for a GET of one router (ids replaced, query dropped)."""
    parts = urlsplit(url).path.rstrip("/").split("/")
    return f"{method.upper()} " + "/".join("{id}" if _ID.match(p) else p for p in parts)


class ApiCalls:
    """Thread-safe request counts of one connection."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def attach(self, conn: Any) -> None:
        """Count every response of ``conn`` (an openstacksdk Connection)."""
        conn.session.session.hooks.setdefault("response", []).append(self._on_response)

    def _on_response(self, response: Any, *args: Any, **kwargs: Any) -> None:
        self.count(response.request.method, response.request.url)

    def count(self, method: str, url: str) -> None:
        key = request_key(method, url)
        with self._lock:
            self._counts[key] += 1

    def snapshot(self) -> dict[str, int]:
        """Counts by request, and ``total``."""
        with self._lock:
            counts = dict(self._counts)
        return {**dict(sorted(counts.items())), "total": sum(counts.values())}

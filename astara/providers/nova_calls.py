"""How the Nova provider calls Nova and Neutron: failures become ProviderError, and idempotent
calls are retried when the API answers a transient server error (500, 502, 503, 504), with
Astara's one retry policy (:mod:`astara.core.retry`: exponential backoff, jitter, a cap).

A transient 5xx is common on busy clouds (and on the local cloud's SQLite, a "database is
locked" surfaces as a 500); reads, deletes and metadata writes are safe to send again. Creating
a server or attaching an interface is never retried here: the state machine decides.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from keystoneauth1 import exceptions as ks_exceptions
from openstack import exceptions as sdk_exceptions

from astara.core.interfaces import ProviderError
from astara.core.retry import Backoff, call_with_retry

API_ERRORS = (sdk_exceptions.SDKException, ks_exceptions.ClientException, OSError)
TRANSIENT = {500, 502, 503, 504}
BACKOFF = Backoff(base=0.5, cap=4.0)  # 3 attempts wait 0.25-0.5 s, then 0.5-1 s
T = TypeVar("T")


@contextlib.contextmanager
def errors(what: str) -> Iterator[None]:
    """Turn Nova/Neutron API failures (HTTP errors, timeouts) into ProviderError."""
    try:
        yield
    except API_ERRORS as exc:
        detail = getattr(exc, "details", None) or str(exc)
        raise ProviderError(f"{what}: {detail}") from exc


def find_or_none(find: Callable[..., Any], name_or_id: str) -> Any | None:
    """``find(name_or_id)`` (an openstacksdk ``find_*``), or None when nothing matches: the SDK
    deprecates ``ignore_missing=True`` for its ``find_*`` methods, so the miss is caught here."""
    try:
        return find(name_or_id, ignore_missing=False)
    except sdk_exceptions.NotFoundException:
        return None


def transient(exc: Exception) -> bool:
    """A server error worth sending an idempotent call again for."""
    return isinstance(exc, API_ERRORS) and getattr(exc, "status_code", None) in TRANSIENT


def idempotent(
    what: str,
    call: Callable[[], T],
    *,
    attempts: int = 3,
    backoff: Backoff = BACKOFF,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``call()``, sent again (up to ``attempts`` times in all) after a transient server error;
    the last failure (or any other) as ProviderError."""
    with errors(what):
        return call_with_retry(
            what, call, transient=transient, backoff=backoff, attempts=attempts, sleep=sleep
        )

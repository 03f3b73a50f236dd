"""How the Nova provider calls Nova and Neutron: failures become ProviderError, and idempotent
calls are retried when the API answers a transient server error (500, 502, 503, 504).

A transient 5xx is common on busy clouds (and on the local cloud's SQLite, a "database is
locked" surfaces as a 500); reads, deletes and metadata writes are safe to send again. Creating
a server or attaching an interface is never retried here: the state machine decides.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from keystoneauth1 import exceptions as ks_exceptions
from openstack import exceptions as sdk_exceptions

from astara.core.interfaces import ProviderError

LOG = logging.getLogger(__name__)

API_ERRORS = (sdk_exceptions.SDKException, ks_exceptions.ClientException, OSError)
TRANSIENT = {500, 502, 503, 504}
T = TypeVar("T")


@contextlib.contextmanager
def errors(what: str) -> Iterator[None]:
    """Turn Nova/Neutron API failures (HTTP errors, timeouts) into ProviderError."""
    try:
        yield
    except API_ERRORS as exc:
        detail = getattr(exc, "details", None) or str(exc)
        raise ProviderError(f"{what}: {detail}") from exc


def idempotent(
    what: str,
    call: Callable[[], T],
    *,
    attempts: int = 3,
    pause: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``call()``, sent again (up to ``attempts`` times) after a transient server error."""
    for attempt in range(1, attempts + 1):
        try:
            with errors(what):
                return call()
        except ProviderError as exc:
            status = getattr(exc.__cause__, "status_code", None)
            if status not in TRANSIENT or attempt == attempts:
                raise
            LOG.info("%s: HTTP %s, trying again (%d/%d)", what, status, attempt, attempts)
            sleep(pause * attempt)
    raise AssertionError("unreachable")

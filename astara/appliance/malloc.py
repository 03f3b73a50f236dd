"""glibc's allocator, set for the API's memory budget (nothing is done with another libc).

Python keeps its small objects in arenas of its own; what goes through ``malloc`` is the big
strings and buffers of a request (a 700 KB body, its JSON text, rendered files) and what
libnftables allocates for a transaction (~4 MB for a ruleset of 1,000 floating IPs). glibc keeps
freed memory below the top of its heap, so without :func:`trim` the high-water mark of each
apply stays resident.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools

M_ARENA_MAX = -8


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - glibc's, or none
    except (OSError, AttributeError):
        return None
    return libc


def one_arena() -> None:
    """One malloc arena for every thread (call before any thread starts): glibc gives each
    thread that allocates its own arena, and the API's threads (the connections running an
    apply, the libnftables transaction, the metadata proxy) would keep several MB each of
    high-water memory (measured ~8 MB after a 5,000-host apply)."""
    if (libc := _libc()) is not None:
        libc.mallopt(M_ARENA_MAX, 1)


def trim() -> None:
    """Give the free memory of the heap back to the system (~1 ms; after an apply)."""
    if (libc := _libc()) is not None:
        with contextlib.suppress(OSError):
            libc.malloc_trim(0)

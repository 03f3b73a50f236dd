"""glibc's allocator, set for the API's memory budget (nothing is done with another libc)."""

from __future__ import annotations

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

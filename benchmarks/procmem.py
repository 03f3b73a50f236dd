"""Memory of a group of processes (an appliance's): RSS, PSS, and the pages they hold together.

PSS divides each shared page by every process on the host that maps it, so the same appliance
measures less on a busy host (other Python processes share the interpreter's pages) than alone
in its VM. :func:`alone` counts each physical page (``/proc/PID/pagemap``, root only) once
among the group's processes only: what they hold between them with nothing else running, as in
an appliance, whatever else this host runs. Its per-process figures are each page divided by
the number of the group's processes mapping it, so they add up to the group's total.
"""

from __future__ import annotations

import collections
from array import array
from pathlib import Path

PAGE_KB = 4
PRESENT = 1 << 63
PFN = (1 << 55) - 1


def _field_kb(path: str, name: str) -> int:
    for line in Path(path).read_text().splitlines():
        if line.startswith(name):
            return int(line.split()[1])
    return 0


def rss_kb(pid: int) -> int:
    return _field_kb(f"/proc/{pid}/status", "VmRSS:")


def pss_kb(pid: int) -> int:
    """Proportional set size: each shared page divided by every process on the host mapping it."""
    return _field_kb(f"/proc/{pid}/smaps_rollup", "Pss:")


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, ...)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*/children"):
            kids = [int(k) for k in task.read_text().split()]
            found += kids
            todo += kids
    return found


def frames(pid: int) -> set[int]:
    """The physical page frames ``pid`` has resident (PFNs: needs root)."""
    found: set[int] = set()
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
            span = line.split(maxsplit=1)[0]
            start, end = (int(x, 16) for x in span.split("-"))
            if start >= 1 << 47:  # [vsyscall]
                continue
            pagemap.seek(start // 4096 * 8)
            entries = array("Q")
            entries.frombytes(pagemap.read((end - start) // 4096 * 8))
            found.update(e & PFN for e in entries if e & PRESENT)
    return found


def alone(pids: dict[str, int]) -> dict[str, float]:
    """KB of each process's pages, each page divided by the number of ``pids`` mapping it
    (nothing outside the group counted): the sum is the group's distinct resident pages."""
    held = {name: frames(pid) for name, pid in pids.items()}
    users = collections.Counter(pfn for pages in held.values() for pfn in pages)
    return {name: sum(PAGE_KB / users[pfn] for pfn in pages) for name, pages in held.items()}


def report(pids: dict[str, int]) -> list[str]:
    """Lines: RSS, PSS (host-wide) and the pages held alone, per process and in total (MB)."""
    lines = []
    for title, sizes in (("resident memory, RSS", {n: rss_kb(p) for n, p in pids.items()}),
                         ("proportional memory, PSS", {n: pss_kb(p) for n, p in pids.items()}),
                         ("alone (the group's pages counted once, nothing else on the host)",
                          alone(pids))):  # fmt: skip
        each = ", ".join(f"{name} {kb / 1024:.1f}" for name, kb in sorted(sizes.items()))
        lines.append(f"{title} (MB): {each}; total {sum(sizes.values()) / 1024:.1f} MB")
    return lines

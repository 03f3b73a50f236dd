"""What the services logged as errors while a test ran, for the report of a failing test.

The services a test starts (neutron-server, Nova, the orchestrator, appliances) write their logs
under the run directory, and those directories are removed when the test's fixtures end. When a
test fails, its report gets the ERROR and CRITICAL lines logged since the test began, and the
run's terminal summary repeats them last, where a truncated CI log still shows them.
"""

from __future__ import annotations

import re
from pathlib import Path

_ERROR = re.compile(r" (ERROR|CRITICAL) ")


def snapshot(root: Path) -> dict[Path, int]:
    """The size of every ``*.log`` under ``root`` now: where the test's own lines begin."""
    sizes: dict[Path, int] = {}
    for path in root.rglob("*.log"):
        try:
            sizes[path] = path.stat().st_size
        except OSError:
            continue  # removed meanwhile
    return sizes


def errors_since(
    root: Path, before: dict[Path, int], per_file: int = 12, width: int = 300
) -> list[str]:
    """ERROR/CRITICAL lines written under ``root`` since ``before``: the last ``per_file`` of
    each log (a traceback's last lines name the exception), each cut to ``width`` characters.
    """
    digest: list[str] = []
    for path in sorted(root.rglob("*.log")):
        try:
            with path.open("rb") as log:
                log.seek(before.get(path, 0))
                text = log.read().decode("utf-8", "replace")
        except OSError:
            continue
        lines = [ln[:width] for ln in text.splitlines() if _ERROR.search(ln)]
        if lines:
            digest.append(f"{path.relative_to(root)} ({len(lines)} error lines, last {per_file}):")
            digest += [f"  {ln}" for ln in lines[-per_file:]]
    return digest

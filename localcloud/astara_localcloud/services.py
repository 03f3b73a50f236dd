"""What the local OpenStack services (neutron-server, Nova, Placement, Glance) share.

They are Debian's packages, run on the system Python from a state directory; their built
databases are cached per package version in :data:`CACHE_DIR`.
"""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SYSTEM_PYTHON = "/usr/bin/python3"
CACHE_DIR = Path("/var/cache/astara")
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


# Python run before an OpenStack service on SQLite: every oslo.db transaction begins IMMEDIATE.
# oslo.db turns pysqlite's own BEGIN off and emits a plain (deferred) BEGIN itself; this makes it
# take the write lock at once. The services are several processes on one database file, one
# connection each: a deferred transaction that read and then writes fails at once with
# "database is locked" (a 500) when another process committed in between (WAL), or when two
# readers both want to write (rollback journal) -- SQLite's busy timeout never applies there.
# With the lock taken at BEGIN, a process waits its turn, up to the URL's ``timeout``.
SQLITE_LOCK_AT_BEGIN = """
from sqlalchemy import event as _event
from sqlalchemy.engine import Engine as _Engine
@_event.listens_for(_Engine, "before_cursor_execute", retval=True)
def _begin_immediate(conn, cursor, statement, parameters, context, executemany):
    return ("BEGIN IMMEDIATE" if statement == "BEGIN" else statement), parameters
"""


def python_service(name: str, module: str, prelude: str = "") -> list[str]:
    """argv running ``module``'s ``main()`` on the system Python as ``name`` (its argv[0], so
    oslo.config names it as its own script would), after the ``prelude`` code."""
    code = f"import sys\n{prelude}\nfrom {module} import main\nsys.argv[0] = {name!r}\n"
    return [SYSTEM_PYTHON, "-c", code + "sys.exit(main())\n"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_command(argv: list[str], what: str) -> None:
    """Run ``argv``; raise RuntimeError naming ``what`` with the end of stderr if it fails."""
    result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed ({result.returncode}): {result.stderr[-2000:]}")


def tail_file(path: Path, lines: int, missing: str) -> str:
    """The last ``lines`` lines of a log, or ``missing`` if it does not exist yet."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return missing
    return "\n".join(text.splitlines()[-lines:])


def json_request(
    url: str,
    method: str,
    body: Any = None,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> Any:
    """One JSON request; the decoded answer (None for an empty body). HTTP errors raise."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={**JSON_HEADERS, **(headers or {})}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        payload = resp.read()
    return json.loads(payload) if payload else None

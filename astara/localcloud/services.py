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

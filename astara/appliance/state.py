"""The appliance's state directory: everything one appliance writes lives under it.

Many appliances run side by side on one host, each in its own namespace with its own state
directory, so nothing here uses fixed system paths.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class StateDir:
    """Paths and small JSON records of one appliance."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._management: tuple[tuple[int, int, int], dict[str, str] | None] | None = None
        self.path.mkdir(parents=True, exist_ok=True)
        self.run.mkdir(exist_ok=True)

    @property
    def run(self) -> Path:
        """Daemon configuration files, pid records and leases."""
        return self.path / "run"

    def file(self, name: str) -> Path:
        return self.run / name

    # -- JSON records, written atomically ------------------------------------------------------
    def read_json(self, name: str) -> Any:
        try:
            return json.loads((self.path / name).read_text())
        except (FileNotFoundError, ValueError):
            return None

    def write_json(self, name: str, data: Any) -> None:
        write_atomic(self.path / name, json.dumps(data, indent=1, sort_keys=True))

    def remove(self, name: str) -> None:
        (self.path / name).unlink(missing_ok=True)

    # -- well-known records -------------------------------------------------------------------
    @property
    def management(self) -> dict[str, str] | None:
        """``{"address", "ifname", "mac"}`` recorded by astara-configure-management.

        Read again only when the file changed (another inode, size or mtime: it is written by
        a rename): every step of an apply asks for it, the floating-IP path several times.
        """
        try:
            st = (self.path / "management.json").stat()
        except FileNotFoundError:
            return None
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        if self._management is None or self._management[0] != key:
            data = self.read_json("management.json")
            self._management = (key, data if isinstance(data, dict) else None)
        return self._management[1]  # the same object until the file changes: do not modify

    def set_management(self, address: str, ifname: str, mac: str) -> None:
        self.write_json("management.json", {"address": address, "ifname": ifname, "mac": mac})

    @property
    def names(self) -> dict[str, str]:
        """MAC -> geN: every name ever given, so names never change, across restarts too."""
        data = self.read_json("names.json")
        return data if isinstance(data, dict) else {}

    def set_names(self, names: dict[str, str]) -> None:
        self.write_json("names.json", names)


def write_atomic(path: Path, text: str | bytes, compare: bool = True) -> bool:
    """Write ``text`` to ``path`` via a rename; return False (and write nothing) if unchanged.

    ``compare=False``: the caller knows it changed; write without reading the old text first.
    """
    data = text.encode() if isinstance(text, str) else text
    try:
        if compare and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True

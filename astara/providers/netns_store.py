"""Where the netns provider keeps each appliance: ``<state_dir>/appliances/<resource id>/``.

``instance.json`` (ports, image, boot time, who is booting it), ``pids/`` (the appliance's
processes, by PID and start time), ``logs/`` and ``appliance/`` (the ``--state-dir`` of the
appliance programs). Records are replaced atomically, so every provider on the same state
directory (an orchestrator restart) reads whole ones and adopts what runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from astara.core.interfaces import PortRole, PortSpec, ProviderError
from astara.linux.processes import ProcessTracker

SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,200}")  # a directory and namespace name


def port_to_json(port: PortSpec) -> dict[str, Any]:
    data = asdict(port)
    data["role"] = port.role.value
    data["fixed_ips"] = list(port.fixed_ips)
    return data


def port_from_json(data: dict[str, Any]) -> PortSpec:
    return PortSpec(
        port_id=data["port_id"],
        network_id=data["network_id"],
        mac_address=data["mac_address"],
        fixed_ips=tuple(data["fixed_ips"]),
        role=PortRole(data["role"]),
    )


def tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` of a log, for an error message."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.strip().splitlines()[-lines:]) or "(empty log)"


class ApplianceStore:
    """The appliances' directories under ``state_dir``, and one process tracker for each."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.state_dir = Path(state_dir)
        self._trackers: dict[str, ProcessTracker] = {}

    def dir(self, resource_id: str) -> Path:
        if not SAFE_ID.fullmatch(resource_id):
            raise ProviderError(f"resource id {resource_id!r} cannot name a namespace")
        return self.state_dir / "appliances" / resource_id

    def log(self, resource_id: str, name: str) -> Path:
        return self.dir(resource_id) / "logs" / f"{name}.log"

    def tracker(self, resource_id: str) -> ProcessTracker:
        # One tracker per appliance for the store's life: the tracker that started a process
        # also reaps it when it stops (no zombies in a long-running orchestrator).
        tracker = self._trackers.get(resource_id)
        if tracker is None:
            tracker = self._trackers[resource_id] = ProcessTracker(self.dir(resource_id) / "pids")
        return tracker

    def load(self, resource_id: str) -> dict[str, Any] | None:
        try:
            record: dict[str, Any] = json.loads(
                (self.dir(resource_id) / "instance.json").read_text()
            )
        except (FileNotFoundError, ValueError):
            return None
        return record

    def save(self, resource_id: str, record: dict[str, Any]) -> None:
        path = self.dir(resource_id) / "instance.json"
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, path)

    def records(self) -> list[dict[str, Any]]:
        """Every appliance's record, by resource id."""
        found = []
        for path in sorted((self.state_dir / "appliances").glob("*/instance.json")):
            record = self.load(path.parent.name)
            if record:
                found.append(record)
        return found

    def remove(self, resource_id: str) -> None:
        """Forget the appliance's tracker and delete its directory."""
        self._trackers.pop(resource_id, None)
        shutil.rmtree(self.dir(resource_id), ignore_errors=True)

"""``astara-local status``: readable tables by default, the same data with --json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from astara_localcloud import cli
from astara_localcloud.status_view import render

STATUS: dict[str, Any] = {
    "orchestrator": "orchestrator running in astara-mgmt; management API on http://127.0.0.1:44250/",
    "nova": None,
    "nova_appliances": [],
    "processes": [
        {"name": "neutron-server", "pid": 4242, "argv": "neutron-server --config-file x"},
        {"name": "astara-orchestrator", "pid": 77, "argv": "astara-orchestrator"},
    ],
    "namespaces": ["astara-fabric", "astara-mgmt"],
    "bridges": {"br-ext": ["upstream-ext", "ap1-ext"], "br-mgmt": []},
    "appliances": [
        {
            "resource": "6aa27c79",
            "namespace": "astara-ap-6aa27c79",
            "status": "ACTIVE",
            "management_address": "fdca:3ba5:a17a:acda::5",
        }
    ],
    "vms": [
        {"name": "vm1", "namespace": "astara-vm-vm1", "mac": "fa:16:3e:00:00:01", "address": None}
    ],
}


def test_every_part_is_a_titled_line_or_an_aligned_table() -> None:
    text = render(STATUS)
    assert "Orchestrator: orchestrator running in astara-mgmt" in text
    assert "Nova: -" in text and "Appliances (Nova servers): none" in text
    processes = text.split("Processes\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert processes[0].split() == ["NAME", "PID", "ARGV"]
    assert set(processes[1].replace(" ", "")) == {"-"}
    header, *rows = [processes[0], *processes[2:]]
    pid_column = header.index("PID")
    assert [row[pid_column:].split()[0] for row in rows] == ["4242", "77"]  # aligned
    assert "  br-ext   upstream-ext, ap1-ext" in text and "  br-mgmt  -" in text
    assert "fdca:3ba5:a17a:acda::5" in text and "  astara-fabric" in text
    vm_row = text.split("VMs\n", 1)[1].splitlines()[2]
    assert vm_row.split() == ["vm1", "astara-vm-vm1", "fa:16:3e:00:00:01", "-"]


class _Cloud:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def status(self) -> dict[str, Any]:
        return STATUS


@pytest.mark.parametrize("as_json", [False, True])
def test_status_prints_tables_or_json(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    as_json: bool,
) -> None:
    monkeypatch.setattr(cli, "LocalCloud", _Cloud)
    argv = ["--state-dir", str(tmp_path), "status", *(["--json"] if as_json else [])]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    if as_json:
        assert json.loads(out) == STATUS
    else:
        assert out.startswith("Orchestrator: ") and "PID" in out

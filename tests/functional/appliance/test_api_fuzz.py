"""Property-based run of the appliance API from its own OpenAPI document: no 5xx, ever."""

from __future__ import annotations

import re
import subprocess

from tests.functional.appliance.lab import API_PORT, MGMT_ADDR, VENV_BIN, Lab


def test_08_schemathesis_finds_no_server_error(lab: Lab) -> None:
    base = f"http://[{MGMT_ADDR}]:{API_PORT}"
    argv = [
        str(VENV_BIN / "schemathesis"), "run", f"{base}/openapi.json", "--url", base,
        "--checks", "not_a_server_error", "--max-examples", "30", "--seed", "4242",
        "--generation-database", "none", "--request-timeout", "20",
    ]  # fmt: skip
    result = subprocess.run(["ip", "netns", "exec", lab.orch, *argv], capture_output=True,
                            text=True, timeout=400, cwd=lab.workdir)  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:]
    assert re.search(r"Tested: 7\b", result.stdout), result.stdout[-3000:]
    cases = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert cases and int(cases[1]) > 100 and cases[1] == cases[2], result.stdout[-3000:]
    # The PUT reached the appliance: its log shows refused and applied documents.
    assert "configuration applied" in (lab.workdir / "api.log").read_text()

"""etc/systemd and etc/logrotate.d as an operator installs them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "etc" / "systemd" / "astara-orchestrator.service"
LOGROTATE = ROOT / "etc" / "logrotate.d" / "astara"
INSTALLED_AT = "/usr/local/bin/astara-orchestrator"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is absent")
def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """Accepted without a single warning (an unknown key is only a warning, exit status 0),
    with ExecStart where this checkout's astara-orchestrator is (verify checks it exists)."""
    text = UNIT.read_text()
    assert f"ExecStart={INSTALLED_AT} " in text
    unit = tmp_path / UNIT.name
    unit.write_text(
        text.replace(INSTALLED_AT, str(Path(sys.executable).parent / "astara-orchestrator"))
    )
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result


@pytest.mark.skipif(shutil.which("logrotate") is None, reason="logrotate is absent")
def test_logrotate_rotates_a_log_the_orchestrator_keeps_open(tmp_path: Path) -> None:
    """Forced rotation with the shipped rules: the old lines move to orchestrator.log.1 and the
    writer's next line (oslo.log's file handler appends) lands at the start of the log."""
    logs = tmp_path / "log"
    logs.mkdir()
    conf = tmp_path / "astara"
    conf.write_text(LOGROTATE.read_text().replace("/var/log/astara/", f"{logs}/"))
    log = logs / "orchestrator.log"
    with open(log, "a", encoding="utf-8") as writer:
        writer.write("before rotation\n")
        writer.flush()
        subprocess.run(
            ["logrotate", "--force", "--state", str(tmp_path / "state"), str(conf)],
            check=True,
            capture_output=True,
            timeout=60,
        )
        writer.write("after rotation\n")
    assert (logs / "orchestrator.log.1").read_text() == "before rotation\n"
    assert log.read_text() == "after rotation\n"

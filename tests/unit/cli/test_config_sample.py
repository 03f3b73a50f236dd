"""The committed etc/orchestrator.ini.sample is what oslo-config-generator makes today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
GENERATOR_CONF = ROOT / "etc" / "oslo-config-generator" / "orchestrator.conf"
SAMPLE = ROOT / "etc" / "orchestrator.ini.sample"
REGENERATE = "oslo-config-generator --config-file etc/oslo-config-generator/orchestrator.conf"


def test_committed_sample_is_up_to_date(tmp_path: Path):
    fresh = tmp_path / "orchestrator.ini.sample"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "oslo_config.generator",
            "--config-file",
            str(GENERATOR_CONF),
            "--output-file",
            str(fresh),
        ],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    assert fresh.read_text() == SAMPLE.read_text(), (
        f"etc/orchestrator.ini.sample is stale: regenerate it with '{REGENERATE}'"
    )


def test_sample_documents_every_astara_option_with_the_seed_names():
    from astara.orchestrator.config import list_opts

    text = SAMPLE.read_text()
    for group, opts in list_opts():
        assert f"[{group or 'DEFAULT'}]" in text
        for opt in opts:
            assert f"#{opt.dest} = " in text, opt.dest
    assert "Deprecated group/name - [DEFAULT]/management_net_id" in text
    assert "[oslo_messaging_rabbit]" in text and "#log_file = " in text

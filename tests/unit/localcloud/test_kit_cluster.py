"""The kit's cluster members' configs, and the coordination daemons' command lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from astara.orchestrator.settings import load_config
from astara_localcloud.kit_cluster import coordination_argv, member_ini

BASE = """[DEFAULT]
host = astara-local
state_dir = {d}
api_listen = 127.0.0.1
api_port = 44250
log_file = {d}/orchestrator.log
"""


def test_each_member_gets_its_own_host_port_state_and_the_coordination_section(
    tmp_path: Path,
) -> None:
    base = tmp_path / "orchestrator"
    text = BASE.format(d=base)
    seen = set()
    for index in range(3):
        member = tmp_path / f"orchestrator-{index}"
        ini = tmp_path / f"m{index}.ini"
        ini.write_text(member_ini(text, base, member, index, "kazoo://127.0.0.1:1?timeout=5"))
        conf = load_config([str(ini)])
        assert conf.api_port == 44250 + index
        assert conf.state_dir == str(member)
        assert f"log_file = {member}/orchestrator.log" in ini.read_text()
        assert conf.coordination.enabled and conf.coordination.url.startswith("kazoo://")
        seen.add(conf.host)
    assert seen == {"astara-local-0", "astara-local-1", "astara-local-2"}


@pytest.mark.parametrize("backend", ["zookeeper", "etcd", "redis"])
def test_daemons_listen_on_loopback_in_their_directory(backend: str, tmp_path: Path) -> None:
    argv, _env = coordination_argv(backend, tmp_path / backend, 12345)
    line = " ".join(argv) + "".join(
        (tmp_path / backend).glob("*.cfg").__next__().read_text() if backend == "zookeeper" else ""
    )
    assert "12345" in line and "127.0.0.1" in line and str(tmp_path / backend) in line
    assert "0.0.0.0" not in line


def test_unknown_backend_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown coordination backend"):
        coordination_argv("consul", tmp_path, 1)

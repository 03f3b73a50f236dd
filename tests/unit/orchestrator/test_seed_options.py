"""The seed's option names: rabbit_* build the transport URL; retired ones stop the start."""

from __future__ import annotations

from pathlib import Path

import pytest

from astara.core.settings import ConfigError
from astara.orchestrator.seed_options import rabbit_deprecation, redact
from astara.orchestrator.service import load_service_config, main


def load(tmp_path: Path, body: str) -> object:
    path = tmp_path / "orchestrator.ini"
    path.write_text(f"[DEFAULT]\nstate_dir = {tmp_path}\n{body}\n")
    return load_service_config([str(path)])


def test_rabbit_options_build_the_transport_url(tmp_path: Path) -> None:
    conf = load(
        tmp_path,
        "[oslo_messaging_rabbit]\nrabbit_userid = astara\nrabbit_password = p@ss/word\n"
        "rabbit_hosts = 10.0.1.4, 10.0.1.5:5673\nrabbit_port = 5670\n"
        "rabbit_virtual_host = /openstack\n",
    )
    assert conf.transport_url == (  # type: ignore[attr-defined]
        "rabbit://astara:p%40ss%2Fword@10.0.1.4:5670,astara:p%40ss%2Fword@10.0.1.5:5673"
        "/%2Fopenstack"
    )
    notice = rabbit_deprecation(conf)  # type: ignore[arg-type]
    assert notice is not None and "p%40ss" not in notice
    assert "transport_url = rabbit://astara:***@10.0.1.4:5670,astara:***@10.0.1.5:5673/" in notice


def test_rabbit_host_and_defaults(tmp_path: Path) -> None:
    conf = load(tmp_path, "[oslo_messaging_rabbit]\nrabbit_host = broker\n")
    assert conf.transport_url == "rabbit://guest:guest@broker:5672/%2F"  # type: ignore[attr-defined]


def test_without_rabbit_options_transport_url_is_untouched(tmp_path: Path) -> None:
    conf = load(tmp_path, "transport_url = rabbit://u:p@mq:5672/v")
    assert conf.transport_url == "rabbit://u:p@mq:5672/v"  # type: ignore[attr-defined]
    assert rabbit_deprecation(conf) is None  # type: ignore[arg-type]


def test_both_transport_url_and_rabbit_options_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="delete the rabbit_"):
        load(
            tmp_path,
            "transport_url = rabbit://u:p@mq:5672/v\n[oslo_messaging_rabbit]\n"
            "rabbit_userid = astara",
        )


@pytest.mark.parametrize(
    ("body", "named", "replacement"),
    [
        (
            "interface_driver = x.BridgeInterfaceDriver",
            "[DEFAULT] interface_driver",
            "compute_provider",
        ),
        (
            "provider_rules_path = /etc/astara/r.json",
            "[DEFAULT] provider_rules_path",
            "not implemented",
        ),
        (
            "[keystone_authtoken]\nauth_uri = http://ks:5000",
            "[keystone_authtoken] auth_uri",
            "auth_url",
        ),
    ],
)
def test_a_retired_option_stops_the_start_naming_its_replacement(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, named: str, replacement: str
) -> None:
    path = tmp_path / "orchestrator.ini"
    path.write_text(f"[DEFAULT]\nstate_dir = {tmp_path}\ncompute_provider = fake\n{body}\n")
    assert main(["--config-file", str(path)]) == 2
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if named in line)
    assert replacement in line


def test_coordination_options_are_astara_own_again(tmp_path: Path) -> None:
    conf = load(tmp_path, "[coordination]\nenabled = true\nurl = kazoo://zk:2181?timeout=5")
    assert conf.coordination.enabled is True
    assert conf.coordination.url == "kazoo://zk:2181?timeout=5"
    assert conf.coordination.group_id == "astara.orchestrator"
    assert conf.coordination.heartbeat_interval == 1.0


def test_redact_hides_every_password() -> None:
    assert redact("rabbit://a:x@h1:1,b:y@h2:2/v?ssl=1") == "rabbit://a:***@h1:1,b:***@h2:2/v?ssl=1"

"""The orchestrator finds the netns provider by name through its entry point."""

from __future__ import annotations

import pytest
from oslo_config import cfg

from astara.core.settings import ConfigError
from astara.orchestrator.config import register_opts
from astara.providers import available, load_provider
from astara.providers.certificates import Authority, write_private
from astara.providers.netns import NetnsProvider


def _conf(tmp_path, tls: str) -> cfg.ConfigOpts:
    ini = tmp_path / "orchestrator.ini"
    ini.write_text(
        f"[DEFAULT]\ncompute_provider = netns\n[router]\nmgt_service_port = 5123\n"
        f"[netns]\nstate_dir = {tmp_path}/netns\nnamespace_prefix = atload\n"
        f"[appliance_tls]\n{tls}"
    )
    conf = cfg.ConfigOpts()
    register_opts(conf)
    conf(["--config-file", str(ini)], project="astara")
    return conf


def test_netns_is_loaded_by_name_from_the_configuration(tmp_path) -> None:
    ca = Authority.create()
    ca.save(tmp_path / "ca.pem", tmp_path / "ca.key")
    cert, key = ca.issue_client()
    write_private(tmp_path / "client.pem", cert)
    write_private(tmp_path / "client.key", key)
    tls = "".join(
        f"{option} = {tmp_path / name}\n"
        for option, name in (("ca_file", "ca.pem"), ("ca_key_file", "ca.key"),
                             ("cert_file", "client.pem"), ("key_file", "client.key"))
    )  # fmt: skip
    provider = load_provider(_conf(tmp_path, tls))
    assert isinstance(provider, NetnsProvider)
    assert (provider.prefix, provider.api_port) == ("atload", 5123)
    assert provider.fabric.namespace == "atload-fabric"
    assert provider.list_instances() == []
    assert provider.authority is not None and provider.authority.cert == ca.cert


def test_netns_needs_the_tls_files_or_the_explicit_opt_out(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"\[appliance_tls\] ca_file must be set"):
        load_provider(_conf(tmp_path, ""))
    provider = load_provider(_conf(tmp_path, "plain_http = true\n"))
    assert isinstance(provider, NetnsProvider) and provider.authority is None


def test_an_unknown_provider_names_the_installed_ones() -> None:
    assert "netns" in available()
    with pytest.raises(LookupError, match="netns"):
        load_provider(None, name="no-such-provider")

"""The orchestrator finds the netns provider by name through its entry point."""

from __future__ import annotations

import pytest
from oslo_config import cfg

from astara.orchestrator.config import register_opts
from astara.providers import available, load_provider
from astara.providers.netns import NetnsProvider


def test_netns_is_loaded_by_name_from_the_configuration(tmp_path) -> None:
    ini = tmp_path / "orchestrator.ini"
    ini.write_text(
        f"[DEFAULT]\ncompute_provider = netns\n[router]\nmgt_service_port = 5123\n"
        f"[netns]\nstate_dir = {tmp_path}/netns\nnamespace_prefix = atload\n"
    )
    conf = cfg.ConfigOpts()
    register_opts(conf)
    conf(["--config-file", str(ini)], project="astara")
    provider = load_provider(conf)
    assert isinstance(provider, NetnsProvider)
    assert (provider.prefix, provider.api_port) == ("atload", 5123)
    assert provider.fabric.namespace == "atload-fabric"
    assert provider.list_instances() == []


def test_an_unknown_provider_names_the_installed_ones() -> None:
    assert "netns" in available()
    with pytest.raises(LookupError, match="netns"):
        load_provider(None, name="no-such-provider")

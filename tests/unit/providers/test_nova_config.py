"""The Nova provider's options and its three ways to authenticate (no network needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from oslo_config import cfg

from astara.orchestrator.config import register_opts
from astara.providers import nova_config
from astara.providers.nova_config import NovaSettings


def make_conf(tmp_path: Path, ini: str = "", **nova: object) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    register_opts(conf)
    nova_config.register_opts(conf)
    conf_file = tmp_path / "orchestrator.ini"
    conf_file.write_text(ini)
    conf(["--config-file", str(conf_file)], project="astara", default_config_files=[])
    key = tmp_path / "astara.pub"
    key.write_text("ssh-ed25519 AAAA operator\n")
    conf.set_override("ssh_public_key", str(key))
    conf.set_override("image_uuid", "img-router", group="router")
    conf.set_override("instance_flavor", "flavor-router", group="router")
    conf.set_override("neutron_endpoint", "http://127.0.0.1:9696")
    for name, value in nova.items():
        conf.set_override(name, value, group="nova")
    return conf


def test_settings_come_from_router_options_and_nova_group(tmp_path: Path) -> None:
    conf = make_conf(tmp_path, boots_per_minute=12.0, active_wait=5.0, config_drive=False)
    settings = NovaSettings.from_conf(conf)
    assert settings.images == {"router": "img-router"}
    assert settings.flavors == {"router": "flavor-router"}
    assert settings.ssh_public_key == "ssh-ed25519 AAAA operator"
    assert (settings.boots_per_minute, settings.active_wait) == (12.0, 5.0)
    assert settings.config_drive is False


def test_trusted_headers_mode_needs_endpoint_and_project(tmp_path: Path) -> None:
    with pytest.raises(cfg.RequiredOptError):
        nova_config.connect(make_conf(tmp_path, auth_mode="trusted-headers"))


def test_trusted_headers_mode_sends_the_identity(tmp_path: Path) -> None:
    conf = make_conf(
        tmp_path,
        auth_mode="trusted-headers",
        compute_endpoint="http://127.0.0.1:8774/v2.1",
        project_id="p-1",
    )
    compute, network = nova_config.connect(conf)
    assert compute.session.additional_headers["X-Project-Id"] == "p-1"
    assert compute is not network  # Neutron: noauth, without Nova's identity headers
    assert "X-Project-Id" not in network.session.additional_headers


def test_keystone_mode_uses_keystone_authtoken(tmp_path: Path) -> None:
    conf = make_conf(
        tmp_path,
        "[keystone_authtoken]\nauth_type = password\nauth_url = http://keystone.example:5000/v3\n"
        "username = astara\npassword = secret\nproject_name = service\n",
    )
    compute, network = nova_config.connect(conf)
    assert compute is network
    assert compute.session.auth.auth_url == "http://keystone.example:5000/v3"


def test_clouds_yaml_mode_reads_the_named_cloud(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(
        "clouds:\n  astara:\n    auth:\n      auth_url: http://keystone.example:5000/v3\n"
        "      username: astara\n      password: secret\n      project_name: service\n"
        "      user_domain_name: Default\n      project_domain_name: Default\n"
    )
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    compute, network = nova_config.connect(
        make_conf(tmp_path, auth_mode="clouds-yaml", cloud="astara")
    )
    assert compute is network
    assert compute.config.name == "astara"
    with pytest.raises(cfg.RequiredOptError):
        nova_config.connect(make_conf(tmp_path, auth_mode="clouds-yaml"))


def test_tenant_images_override_the_kinds_image(tmp_path: Path) -> None:
    conf = make_conf(tmp_path, tenant_images={"tenant-a": "img-a"})
    settings = NovaSettings.from_conf(conf)
    assert settings.tenant_images == {"tenant-a": "img-a"}
    assert nova_config.image_for(settings, "router", "tenant-a") == "img-a"
    assert nova_config.image_for(settings, "router", "tenant-b") == "img-router"


def test_tenant_images_are_read_from_the_config_file(tmp_path: Path) -> None:
    conf = make_conf(tmp_path, "[nova]\ntenant_images = t1:img-1, t2:img-2\n")
    assert NovaSettings.from_conf(conf).tenant_images == {"t1": "img-1", "t2": "img-2"}


@pytest.mark.parametrize(("tenant", "given", "booted"), [
    ("tenant-a", None, "img-a"),  # the tenant's override
    ("tenant-b", None, "img-router"),  # the kind's image
    ("tenant-a", "img-rebuild", "img-rebuild"),  # a rebuild's image wins
])  # fmt: skip
def test_boot_uses_the_tenants_image(
    tmp_path: Path, tenant: str, given: str | None, booted: str
) -> None:
    from unittest import mock

    from astara.core.events import Resource
    from astara.core.interfaces import PortRole, PortSpec
    from astara.providers.nova import NovaProvider

    settings = NovaSettings.from_conf(make_conf(tmp_path, tenant_images={"tenant-a": "img-a"}))
    provider = NovaProvider(mock.MagicMock(), mock.MagicMock(), settings)
    provider.get = mock.Mock(return_value=None)  # type: ignore[method-assign]
    provider._await_build = mock.Mock()  # type: ignore[method-assign]
    mgmt = PortSpec("p-m", "net-m", "fa:16:3e:00:00:01", ("fdca::5/64",), PortRole.MANAGEMENT)
    provider.boot(Resource("r-1", tenant), [mgmt], given)
    create: Any = provider.nova.create_server
    assert create.call_args.kwargs["image_id"] == booted

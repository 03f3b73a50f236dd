"""Options of the Nova provider (``[nova]``) and how it connects to Nova and Neutron.

Three ways to authenticate (``[nova] auth_mode``):

- ``keystone`` (real clouds): the keystoneauth plugin and session options of
  ``[keystone_authtoken]``, shared with the Neutron adapter (:mod:`astara.neutron.client`);
  ``[nova] compute_endpoint`` and ``neutron_endpoint`` only override the catalog.
- ``clouds-yaml``: the ``[nova] cloud`` entry of clouds.yaml (``OS_CLIENT_CONFIG_FILE`` or
  the usual places) for both Nova and Neutron.
- ``trusted-headers`` (the local cloud kit only): a Nova whose paste pipeline has no
  ``authtoken`` filter trusts ``X-User-Id``/``X-Project-Id``/``X-Roles``; the provider sends
  them for ``[nova] project_id`` and talks to a noauth Neutron at ``neutron_endpoint``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openstack
from keystoneauth1 import loading as ks_loading
from openstack.connection import Connection
from oslo_config import cfg

from astara.neutron import client as neutron_client

GROUP = "nova"
AUTH_MODES = ("keystone", "clouds-yaml", "trusted-headers")

OPTS = [
    cfg.StrOpt(
        "auth_mode",
        default="keystone",
        choices=AUTH_MODES,
        help="keystone: [keystone_authtoken] credentials; clouds-yaml: the [nova] cloud entry "
        "of clouds.yaml; trusted-headers: the local cloud kit's Nova without Keystone.",
    ),
    cfg.StrOpt("cloud", help="clouds.yaml entry to use with auth_mode = clouds-yaml."),
    cfg.StrOpt(
        "compute_endpoint",
        help="Nova API endpoint (e.g. http://127.0.0.1:8774/v2.1) instead of the catalog's; "
        "required with auth_mode = trusted-headers.",
    ),
    cfg.StrOpt(
        "project_id",
        help="Project the appliances belong to with auth_mode = trusted-headers (the project "
        "of the ports the orchestrator creates in Neutron).",
    ),
    cfg.FloatOpt("api_timeout", default=30.0, min=1, help="Seconds per Nova/Neutron request."),
    cfg.FloatOpt(
        "active_wait",
        default=60.0,
        min=0,
        help="Seconds boot waits for a new server to leave BUILD; a server that goes ERROR in "
        "that time is a boot failure, one still building is returned as BUILD.",
    ),
    cfg.FloatOpt(
        "build_timeout",
        default=600.0,
        min=1,
        help="A server still in BUILD this many seconds after it was created is reported as "
        "ERROR (timeout).",
    ),
    cfg.FloatOpt(
        "delete_timeout",
        default=120.0,
        min=1,
        help="Seconds stop waits for Nova to delete a server before it fails.",
    ),
    cfg.FloatOpt(
        "boots_per_minute",
        default=0.0,
        min=0,
        help="Build-rate limit per orchestrator worker process (0: none); boots beyond it wait.",
    ),
    cfg.IntOpt("boot_burst", default=5, min=1, help="Boots allowed at once under the limit."),
    cfg.BoolOpt("config_drive", default=True, help="Boot appliances with a config drive."),
    cfg.StrOpt(
        "appliance_state_dir",
        default="/var/lib/astara",
        help="--state-dir given to astara-configure-management inside the appliance.",
    ),
    cfg.StrOpt("availability_zone", help="Availability zone for appliance servers."),
    cfg.DictOpt(
        "tenant_images",
        default={},
        help="Per-tenant image override: <tenant (project) id>:<Glance image id>,... Appliances "
        "of these tenants boot that image instead of [<kind>] image_uuid (an image given by "
        "'astara-ctl router rebuild --image' still wins).",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(OPTS, group=GROUP)
    neutron_client.register_opts(conf)


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    return [(GROUP, list(OPTS))]


@dataclass(frozen=True)
class NovaSettings:
    """What the provider needs from the configuration, as plain values."""

    images: dict[str, str] = field(default_factory=dict)  # resource kind -> Glance image id
    tenant_images: dict[str, str] = field(default_factory=dict)  # tenant id -> image id
    flavors: dict[str, str] = field(default_factory=dict)  # resource kind -> Nova flavor id
    ssh_public_key: str | None = None  # the key itself, not its path
    management_network_id: str | None = None
    appliance_state_dir: str = "/var/lib/astara"
    config_drive: bool = True
    availability_zone: str | None = None
    active_wait: float = 60.0
    build_timeout: float = 600.0
    delete_timeout: float = 120.0
    boots_per_minute: float = 0.0
    boot_burst: int = 5
    poll_interval: float = 0.5

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts) -> NovaSettings:
        register_opts(conf)
        opts = conf[GROUP]
        images, flavors = {}, {}
        for kind in ("router", "loadbalancer"):
            if kind in conf and "image_uuid" in conf[kind]:
                if conf[kind].image_uuid:
                    images[kind] = conf[kind].image_uuid
                if conf[kind].instance_flavor:
                    flavors[kind] = conf[kind].instance_flavor
        return cls(
            images=images,
            tenant_images=dict(opts.tenant_images or {}),
            flavors=flavors,
            ssh_public_key=read_public_key(conf.ssh_public_key),
            management_network_id=conf.management_network_id,
            appliance_state_dir=opts.appliance_state_dir,
            config_drive=opts.config_drive,
            availability_zone=opts.availability_zone,
            active_wait=opts.active_wait,
            build_timeout=opts.build_timeout,
            delete_timeout=opts.delete_timeout,
            boots_per_minute=opts.boots_per_minute,
            boot_burst=opts.boot_burst,
        )


def image_for(settings: NovaSettings, kind: str, tenant_id: str) -> str | None:
    """The image an appliance of ``kind`` for ``tenant_id`` boots: the tenant's override, else
    the kind's image.
    """
    return settings.tenant_images.get(tenant_id) or settings.images.get(kind)


def read_public_key(path: str | None) -> str | None:
    """The operator's public key from ``path``, or None if it is unset or unreadable."""
    if not path:
        return None
    try:
        key = Path(path).read_text().strip()
    except OSError:
        return None
    return key or None


def trusted_headers(project_id: str, user_id: str = "astara") -> dict[str, str]:
    """The identity a Nova without ``authtoken`` trusts (admin of ``project_id``)."""
    return {
        "X-Auth-Token": "trusted-headers",
        "X-User-Id": user_id,
        "X-Project-Id": project_id,
        "X-Roles": "admin,member,reader",
    }


def connect(conf: cfg.ConfigOpts) -> tuple[Connection, Connection]:
    """(compute connection, network connection) as ``[nova] auth_mode`` says."""
    register_opts(conf)
    opts = conf[GROUP]
    timeout = opts.api_timeout
    compute: dict[str, Any] = {}
    if opts.compute_endpoint:
        compute["compute_endpoint_override"] = opts.compute_endpoint
    if opts.auth_mode == "trusted-headers":
        if not (opts.compute_endpoint and opts.project_id):
            raise cfg.RequiredOptError("compute_endpoint and project_id", cfg.OptGroup(GROUP))
        nova = openstack.connect(
            auth_type="none",
            api_timeout=timeout,
            load_yaml_config=False,
            load_envvars=False,
            **compute,
        )
        nova.session.additional_headers.update(trusted_headers(opts.project_id))
        return nova, neutron_client.connect(conf)
    if opts.auth_mode == "clouds-yaml":
        if not opts.cloud:
            raise cfg.RequiredOptError("cloud", cfg.OptGroup(GROUP))
        conn = openstack.connect(cloud=opts.cloud, api_timeout=timeout, **compute)
        return conn, conn
    group = neutron_client.KEYSTONE_GROUP
    auth = ks_loading.load_auth_from_conf_options(conf, group)
    session = ks_loading.load_session_from_conf_options(conf, group, auth=auth)
    if conf.neutron_endpoint:
        compute["network_endpoint_override"] = conf.neutron_endpoint
    conn = Connection(session=session, api_timeout=timeout, **compute)
    return conn, conn

"""The Neutron API over openstacksdk: connecting, reads, the appliance's ports, router status.

Two ways to connect (:func:`connect`):

- ``neutron_endpoint`` set and ``[keystone_authtoken] auth_type`` unset or ``none``: a noauth
  neutron-server (the local cloud, the tests), as :mod:`astara_localcloud.cloud_api` connects;
- otherwise Keystone: the auth plugin and session options of ``[keystone_authtoken]``,
  registered with keystoneauth1's loading helpers (``auth_type = password``, ``auth_url``,
  ``username``, ... and ``cafile``, ``timeout``); ``neutron_endpoint`` then only overrides
  the catalog.

Every failure to reach Neutron is raised as :class:`NeutronUnavailable`; "no such object" is
``None`` or an empty list, never an exception.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import openstack
from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import loading as ks_loading
from openstack import exceptions as sdk_exceptions
from openstack.connection import Connection
from openstack.network.v2.router import Router as SdkRouter
from oslo_config import cfg

from astara.neutron.calls import ApiCalls
from astara.neutron.models import (
    ROUTER_GATEWAY_OWNER,
    ROUTER_INTERFACE_OWNERS,
    FloatingIP,
    Network,
    Port,
    Router,
    Subnet,
)

LOG = logging.getLogger(__name__)

KEYSTONE_GROUP = "keystone_authtoken"
API_TIMEOUT = 30.0
NOAUTH_TYPES = {None, "", "none", "noauth"}


class NeutronUnavailable(Exception):
    """Neutron could not be reached or refused the request; the message says why."""


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register the ``[keystone_authtoken]`` session and auth options (idempotent)."""
    with contextlib.suppress(cfg.DuplicateOptError):
        ks_loading.register_session_conf_options(conf, KEYSTONE_GROUP)
    with contextlib.suppress(cfg.DuplicateOptError):
        ks_loading.register_auth_conf_options(conf, KEYSTONE_GROUP)


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """For oslo-config-generator: the session options and the password plugin's options."""
    opts = (
        ks_loading.get_session_conf_options()
        + ks_loading.get_auth_common_conf_options()
        + ks_loading.get_auth_plugin_conf_options("password")
    )
    return [(KEYSTONE_GROUP, opts)]


def connect(conf: cfg.ConfigOpts) -> Connection:
    """An openstacksdk connection to Neutron, noauth or Keystone as configured."""
    register_opts(conf)
    endpoint = conf.neutron_endpoint
    if conf[KEYSTONE_GROUP].auth_type in NOAUTH_TYPES:
        if not endpoint:
            raise NeutronUnavailable(
                "set neutron_endpoint (noauth) or [keystone_authtoken] auth_type and credentials"
            )
        return openstack.connect(
            auth_type="none",
            network_endpoint_override=endpoint,
            api_timeout=API_TIMEOUT,
            load_yaml_config=False,
            load_envvars=False,
        )
    auth = ks_loading.load_auth_from_conf_options(conf, KEYSTONE_GROUP)
    session = ks_loading.load_session_from_conf_options(conf, KEYSTONE_GROUP, auth=auth)
    extra = {"network_endpoint_override": endpoint} if endpoint else {}
    return Connection(session=session, **extra)


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except (sdk_exceptions.SDKException, ks_exceptions.ClientException, OSError) as exc:
        raise NeutronUnavailable(f"{what}: {exc}") from exc


class NeutronClient:
    """The Neutron calls the orchestrator makes, returning :mod:`astara.neutron.models`."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.net = conn.network
        self._extensions: frozenset[str] | None = None
        self.calls = ApiCalls()  # every HTTP request this client sends, counted
        self.calls.attach(conn)

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts) -> NeutronClient:
        return cls(connect(conf))

    # -- reads ---------------------------------------------------------------------------------
    def get_router(self, router_id: str) -> Router | None:
        with _translated(f"GET router {router_id}"):
            try:
                return Router.from_sdk(self.net.get_router(router_id))
            except sdk_exceptions.NotFoundException:
                return None

    def list_routers(self) -> list[Router]:
        with _translated("GET routers"):
            return [Router.from_sdk(r) for r in self.net.routers()]

    def router_ports(self, router_id: str) -> list[Port]:
        """The router's interface and gateway ports."""
        with _translated(f"GET ports of router {router_id}"):
            ports = [Port.from_sdk(p) for p in self.net.ports(device_id=router_id)]
        return [p for p in ports if p.is_router_port]

    def routers_on_network(self, network_id: str, *, gateways: bool = False) -> set[str]:
        """Ids of the routers with an interface (or, with ``gateways``, their gateway) on
        ``network_id``."""
        owners = sorted(ROUTER_INTERFACE_OWNERS | ({ROUTER_GATEWAY_OWNER} if gateways else set()))
        with _translated(f"GET router ports on network {network_id}"):
            ports = self.net.ports(network_id=network_id, device_owner=owners)
            return {p.device_id for p in ports if p.device_id}

    # Bulk reads: one request for any number of networks (Neutron ORs repeated filters), so
    # the work for a router does not grow in round trips with its interface count.
    def ports_on_networks(self, network_ids: list[str]) -> list[Port]:
        if not network_ids:
            return []
        with _translated(f"GET ports on {len(network_ids)} networks"):
            return [Port.from_sdk(p) for p in self.net.ports(network_id=network_ids)]

    def get_networks(self, network_ids: list[str]) -> list[Network]:
        if not network_ids:
            return []
        with _translated(f"GET {len(network_ids)} networks"):
            return [Network.from_sdk(n) for n in self.net.networks(id=network_ids)]

    def subnets_of_networks(self, network_ids: list[str]) -> list[Subnet]:
        if not network_ids:
            return []
        with _translated(f"GET subnets of {len(network_ids)} networks"):
            return [Subnet.from_sdk(s) for s in self.net.subnets(network_id=network_ids)]

    def router_floating_ips(self, router_id: str) -> list[FloatingIP]:
        with _translated(f"GET floating IPs of router {router_id}"):
            return [FloatingIP.from_sdk(f) for f in self.net.ips(router_id=router_id)]

    def extensions(self) -> frozenset[str]:
        """Aliases of the loaded API extensions (GET /v2.0/extensions), read once."""
        if self._extensions is None:
            with _translated("GET extensions"):
                self._extensions = frozenset(e.alias for e in self.net.extensions())
        return self._extensions

    # -- ports ---------------------------------------------------------------------------------
    def ports_named(self, *names: str) -> list[Port]:
        """The ports called any of ``names`` (one request: Neutron takes a repeated filter)."""
        with _translated(f"GET ports named {', '.join(names)}"):
            return [Port.from_sdk(p) for p in self.net.ports(name=list(names))]

    def create_port(
        self, name: str, network_id: str, *, with_ips: bool, device_owner: str = ""
    ) -> Port:
        """A port for an appliance: port security off when Neutron allows, IPs only if asked."""
        attrs: dict[str, Any] = {"name": name, "network_id": network_id, "admin_state_up": True}
        if device_owner:
            attrs["device_owner"] = device_owner
        if not with_ips:
            attrs["fixed_ips"] = []
        if "port-security" in self.extensions():
            attrs["port_security_enabled"] = False
        elif "security-group" in self.extensions():
            attrs["security_groups"] = []
        with _translated(f"POST port {name} on network {network_id}"):
            return Port.from_sdk(self.net.create_port(**attrs))

    def delete_port(self, port_id: str) -> None:
        with _translated(f"DELETE port {port_id}"):
            self.net.delete_port(port_id, ignore_missing=True)

    # -- status --------------------------------------------------------------------------------
    def add_router_tag(self, router_id: str, tag: str) -> bool:
        """False if the router does not exist."""
        with _translated(f"PUT tag {tag} on router {router_id}"):
            try:
                SdkRouter.new(id=router_id).add_tag(self.net, tag)
            except sdk_exceptions.NotFoundException:
                return False
            return True

    def remove_router_tag(self, router_id: str, tag: str) -> None:
        with (
            _translated(f"DELETE tag {tag} of router {router_id}"),
            contextlib.suppress(sdk_exceptions.NotFoundException),
        ):
            SdkRouter.new(id=router_id).remove_tag(self.net, tag)

    def put(self, path: str, body: dict[str, Any]) -> None:
        """A raw PUT below /v2.0 (for API extensions openstacksdk does not know)."""
        with _translated(f"PUT {path}"):
            response = self.net.put(path, json=body)
            if response.status_code >= 400:
                raise NeutronUnavailable(f"PUT {path}: HTTP {response.status_code}")

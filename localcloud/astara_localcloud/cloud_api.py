"""Create tenants' networks, subnets, routers, ports and floating IPs through the real Neutron API.

Used by the local cloud kit (the demo) and by the tests. Neutron runs with ``noauth`` here:
every call is admin, and the owning project is given as ``project_id`` in the request body.
"""

from __future__ import annotations

from typing import Any

import openstack
from openstack.connection import Connection

from astara.providers.nova_calls import find_or_none


def connect(endpoint: str) -> Connection:
    """An openstacksdk connection to a noauth neutron-server at ``endpoint`` (no ``/v2.0``)."""
    return openstack.connect(
        auth_type="none",
        network_endpoint_override=endpoint,
        load_yaml_config=False,
        load_envvars=False,
    )


class NeutronBuilder:
    """Small, explicit helpers over openstacksdk for building tenant topologies."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.conn = connect(endpoint)
        self.net = self.conn.network

    def find(self, kind: str, name_or_id: str) -> Any | None:
        """The ``kind`` (``port``, ``network``, ``router``...) named or with id ``name_or_id``,
        or None (:func:`~astara.providers.nova_calls.find_or_none`)."""
        return find_or_none(getattr(self.net, f"find_{kind}"), name_or_id)

    def network(self, name: str, project_id: str, *, external: bool = False, **kw: Any) -> Any:
        attrs: dict[str, Any] = {"name": name, "project_id": project_id, **kw}
        if external:
            attrs.update(
                is_router_external=True,
                provider_network_type="flat",
                provider_physical_network=f"ext-{name}"[:32],
            )
        return self.net.create_network(**attrs)

    def subnet(
        self, network: Any, cidr: str, project_id: str, *, ip_version: int = 4, **kw: Any
    ) -> Any:
        return self.net.create_subnet(
            network_id=network.id, cidr=cidr, ip_version=ip_version, project_id=project_id, **kw
        )

    def router(self, name: str, project_id: str, **kw: Any) -> Any:
        return self.net.create_router(name=name, project_id=project_id, **kw)

    def add_interface(self, router: Any, subnet: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.net.add_interface_to_router(router, subnet=subnet.id)
        return result

    def remove_interface(self, router: Any, subnet: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.net.remove_interface_from_router(router, subnet=subnet.id)
        return result

    def set_gateway(self, router: Any, external_network: Any) -> Any:
        return self.net.update_router(
            router, external_gateway_info={"network_id": external_network.id}
        )

    def clear_gateway(self, router: Any) -> Any:
        return self.net.update_router(router, external_gateway_info={})

    def port(self, network: Any, project_id: str, **kw: Any) -> Any:
        return self.net.create_port(network_id=network.id, project_id=project_id, **kw)

    def floating_ip(self, external_network: Any, project_id: str, **kw: Any) -> Any:
        return self.net.create_ip(
            floating_network_id=external_network.id, project_id=project_id, **kw
        )

    def associate(self, fip: Any, port: Any) -> Any:
        return self.net.update_ip(fip, port_id=port.id)

    def disassociate(self, fip: Any) -> Any:
        return self.net.update_ip(fip, port_id=None)

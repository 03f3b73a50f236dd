"""The local Nova itself: a server boots to ACTIVE on a real Neutron port."""

from __future__ import annotations

from tests.integration.nova.conftest import NovaEnv


def test_server_goes_active_bound_to_a_neutron_port(nova: NovaEnv, neutron_api) -> None:
    net = neutron_api.network("nova-cloud-net", "tenant-nc")
    neutron_api.subnet(net, "10.91.0.0/24", "tenant-nc")
    # Created as the orchestrator does: no project given, so Neutron's noauth project.
    port = neutron_api.net.create_port(network_id=net.id, port_security_enabled=False)
    server = nova.conn.compute.create_server(
        name="nova-cloud-probe",
        image_id=nova.image_id,
        flavor_id=nova.flavor_id,
        networks=[{"port": port.id}],
    )
    try:
        server = nova.conn.compute.wait_for_server(server, status="ACTIVE", wait=60, interval=0.5)
        bound = neutron_api.net.get_port(port.id)
        assert bound.device_id == server.id
        assert bound.binding_host_id == nova.cloud.host
        assert bound.binding_vif_type == "ovs"
        addresses = [a["addr"] for a in server.addresses[net.name]]
        assert addresses == [ip["ip_address"] for ip in bound.fixed_ips]
    finally:
        nova.conn.compute.delete_server(server)
        nova.conn.compute.wait_for_delete(server, wait=60, interval=0.5)
        neutron_api.net.delete_port(port, ignore_missing=True)
        neutron_api.net.delete_network(net)

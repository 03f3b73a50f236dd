"""The harness itself, proven against a real neutron-server and RabbitMQ."""

from __future__ import annotations


def test_router_and_interface_notifications(neutron_api, notifications):
    net = neutron_api.network("harness-net", "tenant-h")
    subnet = neutron_api.subnet(net, "10.77.0.0/24", "tenant-h")
    router = neutron_api.router("harness-router", "tenant-h")

    created = notifications.event("router.create.end")
    assert created["payload"]["router"]["id"] == router.id
    assert created["priority"] == "INFO"
    assert created["publisher_id"].startswith("network.")

    iface = neutron_api.add_interface(router, subnet)
    # Neutron emits router.interface.create with no ".end", keyed "router_interface" (DESIGN §3).
    note = notifications.event("router.interface.create")
    assert note["payload"]["router_interface"]["id"] == router.id
    assert note["payload"]["router_interface"]["port_id"] == iface["port_id"]
    assert note["payload"]["router_interface"]["subnet_id"] == subnet.id
    assert note["_context_project_id"]

    neutron_api.remove_interface(router, subnet)
    note = notifications.event("router.interface.delete")
    assert note["payload"]["router_interface"]["id"] == router.id


def test_tap_sees_only_its_own_messages(neutron_api, notifications):
    """A fresh tap starts empty: nothing from the previous test leaks in."""
    router = neutron_api.router("second-router", "tenant-h")
    note = notifications.event("router.create.end")
    assert note["payload"]["router"]["id"] == router.id
    creates = [n for n in notifications.seen if n["event_type"] == "router.create.end"]
    assert [n["payload"]["router"]["id"] for n in creates] == [router.id]

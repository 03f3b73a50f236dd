"""The fabric's fixed pieces: idempotent, and rebuilt when a run left them half-made."""

from __future__ import annotations

import uuid

from astara.linux import netns
from astara.linux.fabric import bridge_name
from astara_localcloud.fabric import KitFabric
from astara_localcloud.networks import EXTERNAL_GATEWAY_CIDRS


def ping(ns: str, address: str) -> bool:
    return "1 received" in netns.exec_in(ns, ["ping", "-c", "1", "-W", "2", address], check=False)


def test_upstream_and_management_endpoint_are_idempotent_and_repaired(fabric: KitFabric) -> None:
    ext, mgmt = str(uuid.uuid4()), str(uuid.uuid4())
    upstream, internet = fabric.ensure_upstream(ext, EXTERNAL_GATEWAY_CIDRS)
    mgmt_ns = fabric.ensure_management_endpoint(mgmt)
    assert fabric.ensure_upstream(ext, EXTERNAL_GATEWAY_CIDRS) == (upstream, internet)
    assert fabric.ensure_management_endpoint(mgmt) == mgmt_ns
    assert fabric.bridges() == {
        bridge_name(ext): ["upstream-ext"],
        bridge_name(mgmt): ["mgmt-orch"],
    }
    # An interrupted run: the internet host lost its routes, the endpoint lost its veth.
    netns.run(["ip", "-n", internet, "route", "flush", "proto", "static"])
    netns.delete_link(mgmt_ns, "mgmt0")
    fabric.ensure_upstream(ext, EXTERNAL_GATEWAY_CIDRS)
    fabric.ensure_management_endpoint(mgmt)
    assert ping(internet, "172.24.4.1")
    assert ping(upstream, "203.0.113.10")
    assert ping(internet, "2001:db8:e::1")
    assert fabric.bridges() == {
        bridge_name(ext): ["upstream-ext"],
        bridge_name(mgmt): ["mgmt-orch"],
    }
    fabric.destroy()
    assert not any(netns.netns_exists(ns) for ns in (upstream, internet, mgmt_ns, fabric.namespace))

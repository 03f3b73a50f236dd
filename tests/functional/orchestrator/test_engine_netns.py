"""The engine driving real netns appliances: boot, check, configure, read, delete.

The engine runs where an orchestrator runs, on the management network (the kit's management
namespace); appliances are the real appliance programs in their namespaces.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

from astara.core.interfaces import PortRole
from astara.linux import netns
from tests.functional.localcloud.netns_kit import NetnsKit, netns_kit, port

__all__ = ["netns_kit"]
PROBE = Path(__file__).with_name("engine_netns_probe.py")


def probe(netns_kit: NetnsKit, *extra: str) -> dict[str, Any]:
    """Run the probe in the management namespace; what it printed."""
    mgmt = netns_kit.management_port()
    service = port(str(uuid.uuid4()), PortRole.SERVICE, "192.0.2.10/24")
    ports = [
        {"port_id": p.port_id, "network_id": p.network_id, "mac": p.mac_address,
         "ips": list(p.fixed_ips), "role": p.role.value}
        for p in (mgmt, service)
    ]  # fmt: skip
    argv = [
        sys.executable, str(PROBE), str(netns_kit.state_dir), netns_kit.prefix,
        str(netns_kit.registry.path), json.dumps(ports), *extra,
    ]  # fmt: skip
    out: dict[str, Any] = json.loads(
        netns.exec_in(netns_kit.mgmt_ns, argv, timeout=240).strip().splitlines()[-1]
    )
    return out


def test_engine_manages_a_real_appliance(netns_kit: NetnsKit):
    out = probe(netns_kit)
    assert out["configured"], out
    assert out["read"], out
    assert out["path"][:4] == ["Alive", "CreateInstance", "CheckBoot", "ConfigureInstance"], out
    assert out["last_error"] is None, out
    # The READ's traffic counters, per interface of the real appliance: the management NIC
    # carried the API calls, so its counters are not zero; the summary (and /metrics) has them.
    traffic = out["traffic"]
    assert traffic and out["summary_traffic"] == traffic, out
    assert all(set(c) == {"bytes_in", "bytes_out", "packets_in", "packets_out"}
               for c in traffic.values()), traffic  # fmt: skip
    busiest = max(traffic, key=lambda nic: traffic[nic]["packets_in"])
    assert traffic[busiest]["packets_in"] > 0 and traffic[busiest]["bytes_out"] > 0, traffic
    line = (
        f'astara_appliance_interface_packets_in_total{{interface="{busiest}",'
        f'resource="e2e-router",tenant="tenant"}} {float(traffic[busiest]["packets_in"])}'
    )
    assert line in out["metrics"], out["metrics"]
    assert out["statuses"][-1] == "ACTIVE" and "BUILD" in out["statuses"]
    assert out["held_back"] and "listed no resources" in out["held_back"], out
    assert out["deleted"] and out["instances_left"] == 0, out


def test_a_failed_boot_and_a_failed_push_are_retried_without_an_event(netns_kit: NetnsKit):
    """The requeue, for real: the provider refuses the first boot and the appliance API does
    not take the first configuration; no event follows the start-up resync and the health sweep
    is an hour away, so only the per-router retries can bring the router to "configured"."""
    out = probe(netns_kit, "flaky")
    assert out["configured"], out
    assert out["injected"] == [1, 1] and out["health_sweeps"] == 0, out
    assert out["path"].count("CreateInstance") == 2, out  # the refused boot, then the retry
    steps = [line.split(": step ")[1].split(" failed")[0] for line in out["retries"]]
    assert steps == ["CreateInstance", "ConfigureInstance"], out
    assert all(line.startswith("router e2e-router: step ") for line in out["retries"]), out
    assert "no capacity" in out["retries"][0] and "API not answering" in out["retries"][1], out
    assert out["failures_in_a_row"] == 0, out  # reset once configured

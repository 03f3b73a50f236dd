"""How long does the Nova provider take to boot and delete an appliance, against Nova itself?

Baseline (same run): the bare Nova calls an appliance needs, made directly with openstacksdk:
create a server on the pre-created ports, wait for ACTIVE; delete it, wait until it is gone.
Measured: the provider's ``boot`` (the same, plus user data, metadata and reading the ports back
from Neutron) and ``stop``, and a hot-plug + unplug of one service port.

    sudo .venv/bin/python benchmarks/nova_boot.py [--services 2] [--rounds 3]

Everything is real and local (Debian's Nova with the fake virt driver, Placement, Glance, a
real neutron-server, RabbitMQ on loopback), started in a temporary directory and stopped by PID.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from oslo_config import cfg

from astara.core.events import Resource
from astara.core.interfaces import PortRole, PortSpec
from astara.linux.processes import ProcessTracker
from astara.orchestrator.config import register_opts
from astara.providers import load_provider, nova_config
from astara.providers.nova_config import trusted_headers
from astara_localcloud import rabbit
from astara_localcloud.cloud_api import NeutronBuilder
from astara_localcloud.neutron_server import NeutronServer
from astara_localcloud.nova_cloud import NovaCloud

PROJECT = "fake_project_id"  # noauth Neutron's project: the ports' and so the servers' project


def summary(label: str, samples: list[float]) -> str:
    return f"{label:42} median {statistics.median(samples):8.0f} ms  (n={len(samples)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=int, default=2, help="service ports per appliance")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rabbit.ensure_running()
    state = Path(tempfile.mkdtemp(prefix="astara-bench-nova-"))
    tracker = ProcessTracker(state / "pids")
    tag = uuid.uuid4().hex[:8]
    vhosts = [f"astara-bench-neutron-{tag}", f"astara-bench-nova-{tag}"]
    bare_up, bare_down, boot, stop, plug = [], [], [], [], []  # type: ignore[var-annotated]
    try:
        neutron = NeutronServer(state / "neutron", rabbit.add_vhost(vhosts[0]), tracker)
        neutron.start()
        cloud = NovaCloud(
            state / "nova",
            rabbit.add_vhost(vhosts[1]),
            neutron.endpoint,
            tracker,
            fake_agent_transport_url=neutron.transport_url,
        )
        started = time.perf_counter()
        cloud.start()
        print(f"Nova up in {time.perf_counter() - started:.1f} s", flush=True)
        api = NeutronBuilder(neutron.endpoint)
        mgmt = api.network("bench-mgmt", "admin")
        api.subnet(mgmt, "fdca:3ba5:a17a:acda::/64", "admin", ip_version=6)
        service = api.network("bench-service", "bench")
        api.subnet(service, "10.93.0.0/24", "bench")

        conf = cfg.ConfigOpts()
        register_opts(conf)
        nova_config.register_opts(conf)
        conf([], project="astara", default_config_files=[])
        conf.set_override("neutron_endpoint", neutron.endpoint)
        for name, value in {
            "auth_mode": "trusted-headers",
            "compute_endpoint": cloud.compute_endpoint,
            "project_id": PROJECT,
        }.items():
            conf.set_override(name, value, group="nova")
        provider = load_provider(conf, "nova")
        compute = provider.nova  # type: ignore[attr-defined]
        image = _image(cloud)
        flavor = compute.create_flavor(name="bench", ram=64, vcpus=1, disk=0)
        conf.set_override("image_uuid", image, group="router")
        conf.set_override("instance_flavor", flavor.id, group="router")
        provider = load_provider(conf, "nova")

        def ports() -> list[PortSpec]:
            specs = [_port(api, mgmt, PortRole.MANAGEMENT)]
            return specs + [_port(api, service, PortRole.SERVICE) for _ in range(args.services)]

        for n in range(args.rounds):
            specs = ports()
            clock = time.perf_counter
            start = clock()
            server = compute.create_server(
                name=f"bench-{n}",
                image_id=image,
                flavor_id=flavor.id,
                networks=[{"port": p.port_id} for p in specs],
            )
            compute.wait_for_server(server, wait=300, interval=0.2)
            bare_up.append((clock() - start) * 1000)
            start = clock()
            compute.delete_server(server)
            compute.wait_for_delete(server, wait=300, interval=0.2)
            bare_down.append((clock() - start) * 1000)

            resource = Resource(str(uuid.uuid4()), "bench")
            start = clock()
            provider.boot(resource, specs, None)
            boot.append((clock() - start) * 1000)
            extra = _port(api, service, PortRole.SERVICE)
            start = clock()
            provider.plug(resource, extra)
            provider.unplug(resource, extra.port_id)
            plug.append((clock() - start) * 1000)
            start = clock()
            provider.stop(resource)
            stop.append((clock() - start) * 1000)
            print(f"round {n + 1}: boot {boot[-1]:.0f} ms, baseline {bare_up[-1]:.0f} ms")
    finally:
        tracker.stop_all()
        for vhost in vhosts:
            rabbit.delete_vhost(vhost)
        shutil.rmtree(state, ignore_errors=True)
    print(f"\nNova appliance, {args.services} service ports, load {os.getloadavg()[0]:.1f}")
    print(summary("baseline: create server -> ACTIVE", bare_up))
    print(summary("baseline: delete server -> gone", bare_down))
    print(summary("provider boot (ACTIVE, ports read back)", boot))
    print(summary("provider stop", stop))
    print(summary("provider plug + unplug", plug))
    overhead = statistics.median(boot) - statistics.median(bare_up)
    print(f"boot overhead over the bare Nova calls: {overhead:.0f} ms (median)")
    return 0


def _image(cloud: NovaCloud) -> str:
    import openstack

    glance = openstack.connect(
        auth_type="none",
        image_endpoint_override=cloud.image_endpoint,
        load_yaml_config=False,
        load_envvars=False,
    )
    glance.session.additional_headers.update(trusted_headers(PROJECT))
    made = glance.image.create_image(
        name="bench", data=io.BytesIO(b"\0" * 4096), disk_format="raw", container_format="bare"
    )
    return str(made.id)


def _port(api: NeutronBuilder, network: object, role: PortRole) -> PortSpec:
    made = api.net.create_port(network_id=network.id, port_security_enabled=False)  # type: ignore[attr-defined]
    fixed = tuple(
        f"{ip['ip_address']}/{'64' if ':' in ip['ip_address'] else '24'}" for ip in made.fixed_ips
    )
    return PortSpec(made.id, made.network_id, made.mac_address, fixed, role)


if __name__ == "__main__":
    sys.exit(main())

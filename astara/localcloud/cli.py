"""``astara-local``: the all-in-one local cloud on one Linux host.

Sub-commands: ``up`` (RabbitMQ, a real neutron-server, a demo tenant router), ``status`` and
``down``. State lives in ``--state-dir`` (default ``/var/lib/astara-local``); every process is
recorded there by PID so that ``down`` stops exactly what ``up`` started.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from pathlib import Path

from astara.localcloud import rabbit
from astara.localcloud.neutron_server import NeutronServer
from astara.localcloud.processes import ProcessTracker

DEFAULT_STATE_DIR = Path("/var/lib/astara-local")
NEUTRON_PORT = 9696
VHOST = "astara-local"


def _step(msg: str) -> None:
    print(f"==> {msg}", flush=True)


class LocalCloud:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.tracker = ProcessTracker(state_dir / "pids")
        self.neutron = NeutronServer(
            state_dir / "neutron", rabbit.transport_url(VHOST), self.tracker, port=NEUTRON_PORT
        )

    def up(self) -> None:
        _step("RabbitMQ on 127.0.0.1:5672")
        rabbit.ensure_running()
        if VHOST not in rabbit.list_vhosts():
            rabbit.add_vhost(VHOST)
        if self.neutron.running():
            _step(f"neutron-server already running at {self.neutron.endpoint}")
        else:
            _step(f"starting neutron-server at {self.neutron.endpoint} (SQLite, noauth)")
            self.neutron.start()
        self._demo_router()

    def _demo_router(self) -> None:
        from astara.localcloud.cloud_api import NeutronBuilder

        api = NeutronBuilder(self.neutron.endpoint)
        routers = list(api.net.routers(name="demo-router"))
        if routers:
            _step("demo router already exists")
            router = routers[0]
        else:
            _step("creating the demo tenant: external network, private network, router")
            ext = api.network("public", "admin", external=True)
            api.subnet(ext, "172.24.4.0/24", "admin", enable_dhcp=False, gateway_ip="172.24.4.1")
            net = api.network("demo-net", "demo")
            subnet = api.subnet(net, "10.10.0.0/24", "demo", dns_nameservers=["172.24.4.1"])
            router = api.router("demo-router", "demo")
            api.add_interface(router, subnet)
            router = api.set_gateway(router, ext)
        print(
            json.dumps(
                {"id": router.id, "name": router.name, "gateway": router.external_gateway_info},
                indent=2,
            )
        )

    def status(self) -> int:
        procs = self.tracker.all()
        for proc in procs:
            print(f"{proc.name:20} pid {proc.pid:7}  {' '.join(proc.argv)[:80]}")
        if not procs:
            print("nothing running")
        return 0

    def down(self, keep_state: bool) -> None:
        stopped = self.tracker.stop_all()
        _step(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        if VHOST in rabbit.list_vhosts():
            rabbit.delete_vhost(VHOST)
        if not keep_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)
            _step(f"removed {self.state_dir}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="astara-local", description=__doc__.split("\n")[0])
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start the local cloud and create the demo router")
    sub.add_parser("status", help="list the processes of the local cloud")
    down = sub.add_parser("down", help="stop everything and remove the state")
    down.add_argument("--keep-state", action="store_true", help="keep the state directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cloud = LocalCloud(args.state_dir)
    if args.command == "up":
        cloud.up()
        print(
            "\nNOT YET: the orchestrator, the netns appliances and the VM stand-ins are not built;"
            " this demo shows the real Neutron side only (issues 3, 4, 5)."
            "\nTake it down with: sudo scripts/demo.sh down"
        )
        return 0
    if args.command == "status":
        return cloud.status()
    cloud.down(args.keep_state)
    return 0


if __name__ == "__main__":
    sys.exit(main())

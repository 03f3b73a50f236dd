"""``astara-local``: the all-in-one local cloud on one Linux host.

Sub-commands: ``up`` (RabbitMQ, a real neutron-server, the bridge fabric, the management and
external networks, the upstream gateway and internet stand-in, the orchestrator when it is
installed, and a demo tenant router), ``status`` (tables; ``--json`` for scripts), ``down``
and ``vm create|exec|delete|list``.
State lives in ``--state-dir`` (default ``/var/lib/astara-local``); every process is recorded
there by PID and every namespace by name, so ``down`` removes exactly what ``up`` made.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from astara_localcloud import demo, status_view
from astara_localcloud.kit import DEFAULT_STATE_DIR, NEUTRON_PORT, VHOST, LocalCloud
from astara_localcloud.vms import VmError


def _step(msg: str) -> None:
    print(f"==> {msg}", flush=True)


def _vm(cloud: LocalCloud, args: argparse.Namespace) -> int:
    if args.vm_command == "create":
        vm = cloud.vm_create(args.network, args.name, wait=None if args.no_wait else args.timeout)
        lease = vm.lease or {}
        print(
            json.dumps(
                {
                    "name": vm.name,
                    "namespace": vm.namespace,
                    "port_id": vm.port_id,
                    "mac": vm.mac_address,
                    "address": lease.get("ip_address"),
                },
                indent=2,
            )
        )
        return 0
    if args.vm_command == "exec":
        argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        if not argv:
            raise VmError("vm exec needs a command after '--'")
        result = cloud.vms.exec(args.name, argv, timeout=args.timeout)
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        return result.returncode
    if args.vm_command == "delete":
        if not cloud.vm_delete(args.name):
            print(f"no VM named {args.name}", file=sys.stderr)
            return 1
        _step(f"vm {args.name} deleted")
        return 0
    for vm in cloud.vms.list():
        address = (vm.lease or {}).get("ip_address", "-")
        print(f"{vm.name:16} {vm.namespace:28} {vm.mac_address}  {address}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="astara-local", description="The all-in-one local cloud on one Linux host."
    )
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    parser.add_argument("--prefix", default="astara", help="namespace name prefix")
    parser.add_argument("--neutron-port", type=int, default=NEUTRON_PORT)
    parser.add_argument("--vhost", default=VHOST, help="RabbitMQ virtual host")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the local cloud (idempotent)")
    up.add_argument("--no-demo", action="store_true", help="do not create the demo router")
    up.add_argument(
        "--no-orchestrator", action="store_true", help="everything but the orchestrator"
    )
    up.add_argument(
        "--nova",
        action="store_true",
        help="also run Nova (fake virt driver) with a hypervisor stand-in; the orchestrator "
        "boots appliances as Nova servers (kept for later runs on this state)",
    )
    up.add_argument(
        "--orchestrators",
        type=int,
        default=1,
        help="run this many orchestrators as one cluster (API ports 44250, 44251, ...)",
    )
    up.add_argument(
        "--coordination",
        choices=("zookeeper", "etcd", "redis"),
        help="the coordination service the kit starts for the cluster (default with more than "
        "one orchestrator: zookeeper)",
    )
    status = sub.add_parser(
        "status", help="what runs: processes, namespaces, bridges, appliances, VMs (tables)"
    )
    status.add_argument("--json", action="store_true", help="the same as JSON, for scripts")
    down = sub.add_parser("down", help="stop everything and remove the state")
    down.add_argument("--keep-state", action="store_true", help="keep the state directory")
    vm = sub.add_parser("vm", help="VM stand-ins").add_subparsers(dest="vm_command", required=True)
    create = vm.add_parser("create", help="a VM stand-in with a Neutron port, address by DHCP")
    create.add_argument("--network", required=True, help="Neutron network name or id")
    create.add_argument("--name")
    create.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for DHCP")
    create.add_argument("--no-wait", action="store_true", help="do not wait for a DHCP lease")
    run = vm.add_parser("exec", help="run a command in a VM: vm exec NAME -- CMD...")
    run.add_argument("name")
    run.add_argument("argv", nargs=argparse.REMAINDER)
    run.add_argument("--timeout", type=float, default=60.0)
    delete = vm.add_parser("delete", help="delete a VM stand-in and its Neutron port")
    delete.add_argument("name")
    vm.add_parser("list", help="list VM stand-ins")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.command != "up" and not args.state_dir.exists():
        # Nothing was brought up with this state directory (and asking must not create it).
        print(f"astara-local: nothing is up ({args.state_dir} does not exist)", file=sys.stderr)
        return 0 if args.command in ("status", "down") else 1
    cloud = LocalCloud(
        args.state_dir,
        prefix=args.prefix,
        neutron_port=args.neutron_port,
        vhost=args.vhost,
        progress=_step,
    )
    try:
        if args.command == "up":
            nets = cloud.up(
                orchestrator=not args.no_orchestrator,
                nova=args.nova,
                orchestrators=args.orchestrators,
                coordination=args.coordination,
            )
            if not args.no_demo:
                demo.run(cloud, nets, _step)
            print(f"\n{cloud.orchestrator.note()}\nTake it down with: sudo scripts/demo.sh down")
            return 0
        if args.command == "status":
            state = cloud.status()
            print(json.dumps(state, indent=2) if args.json else status_view.render(state))
            return 0
        if args.command == "vm":
            return _vm(cloud, args)
        cloud.down(args.keep_state)
        return 0
    except (VmError, demo.DemoFailed) as exc:
        print(f"astara-local: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

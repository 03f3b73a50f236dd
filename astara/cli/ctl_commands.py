"""The commands of astara-ctl (cliff): one class per command, all over the management API."""

from __future__ import annotations

import argparse
import json
import os
import textwrap
from collections.abc import Sequence
from typing import Any

from cliff.command import Command
from cliff.lister import Lister
from cliff.show import ShowOne

from astara.cli.client import ApiClient
from astara.cli.explain import explain, format_transition

RESULT_FIELDS = ("command", "target", "submitted", "detail")
LIST_COLUMNS = ("id", "tenant_id", "kind", "state", "instance_status", "worker", "debug_reason")
SHOW_FIELDS = (
    "id",
    "tenant_id",
    "kind",
    "state",
    "instance_status",
    "worker",
    "management_address",
    "image",
    "debug_reason",
    "last_error",
    "boot_failures",
    "failed_step",
    "failures_in_a_row",
    "next_retry_at",
    "queued_actions",
    "managed_by",
)
CLUSTER_FIELDS = ("enabled", "member_id", "members", "acting", "last_contact_age", "ring_changes")


def _client(command: Command) -> ApiClient:
    client: ApiClient = command.app.client  # type: ignore[attr-defined]
    return client


def _result(result: dict[str, Any]) -> tuple[Sequence[str], Sequence[Any]]:
    return RESULT_FIELDS, [result.get(field, "") for field in RESULT_FIELDS]


class Poll(ShowOne):
    """Send a POLL (health check) to every resource."""

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[Sequence[str], Sequence[Any]]:
        return _result(_client(self).poll())


class _ResourceCommand(ShowOne):
    command = ""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("resource_id", metavar="<router-id>")
        return parser

    def body(self, parsed_args: argparse.Namespace) -> dict[str, Any] | None:
        return None

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[Sequence[str], Sequence[Any]]:
        client = _client(self)
        return _result(
            client.resource_command(parsed_args.resource_id, self.command, self.body(parsed_args))
        )


class Rebuild(_ResourceCommand):
    """Destroy and recreate a router's appliance (optionally from another image)."""

    command = "rebuild"

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("--image", help="Glance image id (default: [router] image_uuid)")
        return parser

    def body(self, parsed_args: argparse.Namespace) -> dict[str, Any] | None:
        return {"image": parsed_args.image} if parsed_args.image else None


class Update(_ResourceCommand):
    """Send an UPDATE: re-read the router from Neutron and reconfigure its appliance."""

    command = "update"


class _DebugReason:
    @staticmethod
    def add_reason(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--reason", default="", help="why (shown to other operators)")


class Debug(_ResourceCommand):
    """Put a router in debug mode: the orchestrator leaves it alone until 'manage'."""

    command = "debug"

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        _DebugReason.add_reason(parser)
        return parser

    def body(self, parsed_args: argparse.Namespace) -> dict[str, Any] | None:
        return {"reason": parsed_args.reason}


class Manage(_ResourceCommand):
    """Take a router out of debug mode and hand it back to the orchestrator."""

    command = "manage"


class TenantDebug(ShowOne):
    """Put every router of a tenant in debug mode."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("tenant_id", metavar="<tenant-id>")
        _DebugReason.add_reason(parser)
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[Sequence[str], Sequence[Any]]:
        body = {"reason": parsed_args.reason}
        return _result(_client(self).tenant_command(parsed_args.tenant_id, "debug", body))


class TenantManage(ShowOne):
    """Take a tenant out of debug mode."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("tenant_id", metavar="<tenant-id>")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[Sequence[str], Sequence[Any]]:
        return _result(_client(self).tenant_command(parsed_args.tenant_id, "manage"))


class GlobalDebugEnable(ShowOne):
    """Put every resource in debug mode (the orchestrator acts on nothing)."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        _DebugReason.add_reason(parser)
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[Sequence[str], Sequence[Any]]:
        return _result(_client(self).global_debug(True, parsed_args.reason))


class GlobalDebugDisable(ShowOne):
    """Leave global debug mode."""

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[Sequence[str], Sequence[Any]]:
        return _result(_client(self).global_debug(False))


class DebugList(Lister):
    """List every debug mode (resource, tenant, global) with its reason and time."""

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[Sequence[str], Any]:
        columns = ("scope", "target", "reason", "since")
        modes = _client(self).debug_modes()
        return columns, [[mode[c] for c in columns] for mode in modes]


class WorkersDebug(Command):
    """Print the diagnostics of every worker process and its state machines."""

    def take_action(self, parsed_args: argparse.Namespace) -> int:
        report = _client(self).workers_report()
        self.app.stdout.write(json.dumps(report, indent=2, sort_keys=True) + "\n")
        return 0


class ConfigReload(ShowOne):
    """Make the orchestrator re-read its configuration files (mutable options)."""

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[Sequence[str], Sequence[Any]]:
        return _result(_client(self).reload_config())


RESYNC_FIELDS = ("listed", "adopted", "deleted", "orphans_stopped", "held_back", "forced", "error")


class Resync(ShowOne):
    """Resync every router from Neutron now. A resync whose listing is empty or would delete
    more than resync_max_delete_fraction of the routers deletes nothing; --force deletes."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument(
            "--force",
            action="store_true",
            help="delete every router Neutron no longer lists, even if the guard holds it back",
        )
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[Sequence[str], Sequence[Any]]:
        report = _client(self).resync(parsed_args.force)
        return RESYNC_FIELDS, [report.get(field) for field in RESYNC_FIELDS]


class ClusterShow(ShowOne):
    """Show the cluster: this member, the live members, whether it acts."""

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[Sequence[str], Sequence[Any]]:
        status = _client(self).cluster()
        values = [status.get(f) for f in CLUSTER_FIELDS]
        values[CLUSTER_FIELDS.index("members")] = ", ".join(status.get("members") or [])
        return CLUSTER_FIELDS, values


class ClusterOwner(ShowOne):
    """Show which cluster member manages a router (by the current ring)."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("resource_id", metavar="<router-id>")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[Sequence[str], Sequence[Any]]:
        answer = _client(self).owner(parsed_args.resource_id)
        return ("resource_id", "owner"), (answer.get("resource_id"), answer.get("owner"))


class ResourceList(Lister):
    """List every resource with its state."""

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[Sequence[str], Any]:
        views = _client(self).list_resources()
        return LIST_COLUMNS, [[v.get(c) for c in LIST_COLUMNS] for v in views]


class Show(ShowOne):
    """Show a router and explain why it is in its state."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("resource_id", metavar="<router-id>")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[Sequence[str], Sequence[Any]]:
        view = _client(self).get_resource(parsed_args.resource_id)
        values: list[Any] = [view.get(f) for f in SHOW_FIELDS]
        values[SHOW_FIELDS.index("queued_actions")] = ", ".join(view.get("queued_actions") or [])
        transitions = "\n".join(format_transition(t) for t in view.get("transitions") or [])
        return (
            (*SHOW_FIELDS, "gateways", "traffic", "last_transitions", "why"),
            (
                *values,
                format_gateways(view.get("gateways") or {}),
                format_traffic(view.get("traffic") or {}),
                transitions,
                "\n".join(textwrap.fill(line, 88) for line in explain(view)),
            ),
        )


def format_gateways(gateways: dict[str, bool]) -> str:
    """``v4 reachable, v6 UNREACHABLE`` (empty: no gateway, or the appliance did not say)."""
    return ", ".join(
        f"{family} {'reachable' if answers else 'UNREACHABLE'}"
        for family, answers in sorted(gateways.items())
    )


def format_traffic(traffic: dict[str, dict[str, int]]) -> str:
    """One line per interface: ``ge0: bytes_in 1234, bytes_out 567, packets_in 12, ...``."""
    return "\n".join(
        f"{ifname}: " + ", ".join(f"{name} {value}" for name, value in sorted(counters.items()))
        for ifname, counters in sorted(traffic.items())
    )


class Browse(Command):
    """A live console of every router: filter as you type, r rebuilds, u updates."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("--refresh", type=float, default=5.0, help="seconds between refreshes")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> int:
        from astara.cli.browse import FleetBrowser  # textual loads only for this command

        FleetBrowser(_client(self), parsed_args.refresh).run()
        return 0


def ssh_argv(address: str, user: str, extra: Sequence[str]) -> list[str]:
    """The ssh command line that reaches an appliance's management address."""
    return ["ssh", *extra, f"{user}@{address}"]


class Ssh(Command):
    """Open an ssh session to a router's appliance (its management address)."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("resource_id", metavar="<router-id>")
        parser.add_argument("--user", default="astara", help="login user (default: astara)")
        parser.add_argument("ssh_args", nargs=argparse.REMAINDER, help="passed to ssh after --")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> int:
        view = _client(self).get_resource(parsed_args.resource_id)
        address = view.get("management_address")
        if not address:
            raise RuntimeError(
                f"router {parsed_args.resource_id} has no management address "
                f"(instance {view.get('instance_status')}); nothing to ssh to"
            )
        extra = [a for a in parsed_args.ssh_args if a != "--"]
        argv = ssh_argv(address, parsed_args.user, extra)
        os.execvp(argv[0], argv)
        return 0  # not reached

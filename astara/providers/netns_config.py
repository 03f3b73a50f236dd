"""Options of the netns provider (``[netns]``) and the appliance programs it runs by default."""

from __future__ import annotations

import sys
from pathlib import Path

from oslo_config import cfg

_BIN = Path(sys.executable).parent
DEFAULT_CONFIGURE_COMMAND = (
    str(_BIN / "astara-configure-management"),
    "--state-dir",
    "{state_dir}",
    "{mac}",
    "{cidr}",
)
DEFAULT_APPLIANCE_COMMAND = (
    str(_BIN / "astara-appliance-api"),
    "--state-dir",
    "{state_dir}",
    "--port",
    "{port}",
)

OPTS = [
    cfg.StrOpt(
        "state_dir",
        default="/var/lib/astara/netns",
        help="Where the netns provider keeps each appliance's record, PIDs and logs.",
    ),
    cfg.StrOpt("namespace_prefix", default="astara", help="Appliances are <prefix>-<resource id>."),
    cfg.StrOpt(
        "fabric_namespace",
        help="Namespace holding the network bridges (default: <namespace_prefix>-fabric).",
    ),
    cfg.ListOpt(
        "configure_command",
        default=list(DEFAULT_CONFIGURE_COMMAND),
        help="Run once inside the namespace to set up the management NIC; {state_dir}, {mac}, "
        "{cidr} and {address} are filled in.",
    ),
    cfg.ListOpt(
        "appliance_command",
        default=list(DEFAULT_APPLIANCE_COMMAND),
        help="The appliance API server started inside the namespace; {state_dir}, {port} and "
        "{address} are filled in.",
    ),
    cfg.StrOpt(
        "namespace_registry",
        help="File recording every namespace the provider makes, so a kit can remove them all "
        "(default: <state_dir>/namespaces.json).",
    ),
    cfg.FloatOpt(
        "ready_timeout",
        default=60.0,
        help="Seconds boot waits for the appliance API to listen before it fails.",
    ),
    cfg.FloatOpt(
        "configure_timeout",
        default=60.0,
        help="Seconds the management configure program may take before boot fails.",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(OPTS, group="netns")


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    return [("netns", list(OPTS))]

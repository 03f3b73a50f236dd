"""``astara-ctl``: steer a running astara-orchestrator through its management API.

Output like the openstack CLI (``-f table|json|yaml|value``). The API's URL comes from
``--url``, ``$ASTARA_URL`` or orchestrator.ini's api_listen/api_port; the token from
``--token``, ``--token-file``, ``$ASTARA_TOKEN`` or the orchestrator's own (api_token,
``$ASTARA_API_TOKEN``, api_token_file).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from cliff.app import App
from cliff.command import Command
from cliff.commandmanager import CommandManager

from astara import __version__
from astara.cli import ctl_commands as c
from astara.cli.client import ApiClient, default_token, default_url

COMMANDS: dict[str, type[Command]] = {
    "browse": c.Browse,
    "poll": c.Poll,
    "resource list": c.ResourceList,
    "show": c.Show,
    "ssh": c.Ssh,
    "tenant debug": c.TenantDebug,
    "tenant manage": c.TenantManage,
    "global debug enable": c.GlobalDebugEnable,
    "global debug disable": c.GlobalDebugDisable,
    "debug list": c.DebugList,
    "workers debug": c.WorkersDebug,
    "config reload": c.ConfigReload,
    "resync": c.Resync,
    "cluster show": c.ClusterShow,
    "cluster owner": c.ClusterOwner,
}
for _kind in ("router", "resource"):
    COMMANDS.update(
        {
            f"{_kind} rebuild": c.Rebuild,
            f"{_kind} update": c.Update,
            f"{_kind} debug": c.Debug,
            f"{_kind} manage": c.Manage,
            f"{_kind} show": c.Show,
        }
    )


class AstaraCtl(App):
    """The astara-ctl application."""

    def __init__(self) -> None:
        manager = CommandManager("astara.ctl")
        for name, command in COMMANDS.items():
            manager.add_command(name, command)
        super().__init__(
            description="Steer a running astara-orchestrator.",
            version=__version__,
            command_manager=manager,
            deferred_help=True,
        )
        self._client: ApiClient | None = None

    def build_option_parser(self, description, version, argparse_kwargs=None):  # type: ignore[no-untyped-def]
        self.NAME = "astara-ctl"  # also when run as python -m astara.cli.ctl
        parser = super().build_option_parser(
            description, version, {**(argparse_kwargs or {}), "prog": self.NAME}
        )
        parser.add_argument(
            "--url",
            help="management API URL (default: $ASTARA_URL, then "
            "api_listen/api_port of orchestrator.ini, then http://[::1]:44250)",
        )
        parser.add_argument(
            "--token",
            help="api_token (default: --token-file, $ASTARA_TOKEN, then the orchestrator's: "
            "orchestrator.ini's api_token, $ASTARA_API_TOKEN, api_token_file)",
        )
        parser.add_argument(
            "--token-file", metavar="FILE", help="read the api_token from FILE's first line"
        )
        parser.add_argument(
            "--config-file",
            action="append",
            metavar="FILE",
            help="orchestrator.ini (default: $ASTARA_CONFIG, /etc/astara/orchestrator.ini)",
        )
        return parser

    def initialize_app(self, argv: list[str]) -> None:
        # httpx logs every request at INFO; operators want results, not transport chatter.
        logging.getLogger("httpx").setLevel(logging.WARNING)

    @property
    def client(self) -> ApiClient:
        """The API client, made on first use (so --help needs no configuration)."""
        if self._client is None:
            files = self.options.config_file
            url = self.options.url or default_url(files)
            token = self.options.token or default_token(files, self.options.token_file)
            self._client = ApiClient(url, token)
        return self._client


def main(argv: Sequence[str] | None = None) -> int:
    return AstaraCtl().run(list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())

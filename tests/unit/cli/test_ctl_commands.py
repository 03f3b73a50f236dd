"""astara-ctl offers every command of the seed's operator tools (and its own additions)."""

from __future__ import annotations

from astara.cli.ctl import COMMANDS, AstaraCtl

SEED_COMMANDS = [
    "browse",
    "poll",
    "router rebuild",
    "router update",
    "router debug",
    "router manage",
    "tenant debug",
    "tenant manage",
    "ssh",
    "workers debug",
]
ADDED = [
    "resource list",
    "show",
    "global debug enable",
    "global debug disable",
    "config reload",
    "debug list",
    "resource rebuild",
]


def test_every_seed_command_is_there():
    app = AstaraCtl()
    for name in SEED_COMMANDS + ADDED:
        found = app.command_manager.find_command(name.split())
        assert found[0] is COMMANDS[name], name


def test_rebuild_takes_an_image_and_debug_a_reason():
    app = AstaraCtl()
    rebuild = COMMANDS["router rebuild"](app, None).get_parser("astara-ctl router rebuild")
    assert rebuild.parse_args(["r-1", "--image", "img"]).image == "img"
    debug = COMMANDS["router debug"](app, None).get_parser("astara-ctl router debug")
    assert debug.parse_args(["r-1", "--reason", "why"]).reason == "why"

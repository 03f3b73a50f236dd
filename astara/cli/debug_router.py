"""``astara-debug-router --router-id ID``: step one router's state machine in the foreground.

The router is put in debug mode in the running orchestrator (through its management API), so
the orchestrator leaves it alone; this tool then runs the router's state machine here, against
the real Neutron driver and compute provider of orchestrator.ini, one transition at a time,
printing each (``--pdb`` breaks into the debugger before every step). At the end, or on
Ctrl-C, the router is handed back (``manage``) unless ``--keep-debug`` is given.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pdb
import socket
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from astara.cli.client import ApiClient, ClientError, default_token, default_url
from astara.cli.explain import format_transition
from astara.core.events import Action, Event, Resource
from astara.core.settings import ConfigError
from astara.core.state_machine import MAX_STEPS_PER_RUN, Machine, State
from astara.orchestrator.service import WiringError, debug_machine
from astara.orchestrator.settings import load_config

PROG = "astara-debug-router"
ACTIONS = (Action.UPDATE, Action.POLL, Action.REBUILD, Action.READ, Action.CREATE)


def step_through(
    machine: Machine,
    event: Event,
    out: TextIO,
    before_step: Callable[[Machine], None] | None = None,
) -> int:
    """Send ``event`` to ``machine`` and step until it yields; print every transition."""
    if not machine.send(event):
        print(f"the state machine ignores {event.action} now (see the log)", file=out)
        return 0
    steps = 0
    while steps < MAX_STEPS_PER_RUN:
        if before_step is not None:
            before_step(machine)
        transition = machine.step()
        if transition is None:
            break
        steps += 1
        print(format_transition(dataclasses.asdict(transition)), file=out, flush=True)
        if machine.state is State.EXIT or (
            machine.state is State.CALC_ACTION and not machine.queue
        ):
            break
    status = machine.instance.state.value
    error = machine.instance.last_error
    print(
        f"{steps} transition(s); instance {status}" + (f"; last error: {error}" if error else ""),
        file=out,
    )
    return steps


def debug_router(
    client: ApiClient,
    router_id: str,
    make_machine: Callable[[Resource], Machine],
    action: Action = Action.UPDATE,
    image: str | None = None,
    before_step: Callable[[Machine], None] | None = None,
    keep_debug: bool = False,
    out: TextIO = sys.stdout,
) -> int:
    """Take ``router_id`` from the orchestrator, step it here, hand it back."""
    view = client.get_resource(router_id)
    reason = f"{PROG} on {socket.gethostname()} (pid {os.getpid()})"
    client.resource_command(router_id, "debug", {"reason": reason})
    print(f"router {router_id} is in debug mode: the orchestrator leaves it to us", file=out)
    try:
        resource = Resource(router_id, view["tenant_id"], view.get("kind") or "router")
        machine = make_machine(resource)
        body = {"image": image} if image else {}
        return step_through(machine, Event(resource, action, body), out, before_step)
    finally:
        if keep_debug:
            print(
                f"router {router_id} stays in debug mode: 'astara-ctl router manage "
                f"{router_id}' hands it back",
                file=out,
            )
        else:
            client.resource_command(router_id, "manage")
            print(f"router {router_id} handed back to the orchestrator", file=out)


def _break_before_step(machine: Machine) -> None:
    """pdb stops here before each step: 'p machine.state', 'p machine.instance.state', 'c'."""
    pdb.set_trace()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--router-id", required=True)
    parser.add_argument(
        "--config-file",
        action="append",
        metavar="FILE",
        help="orchestrator.ini (default: $ASTARA_CONFIG, /etc/astara/orchestrator.ini)",
    )
    parser.add_argument("--url", help="management API (default: from orchestrator.ini)")
    parser.add_argument("--token", help="api_token (default: $ASTARA_TOKEN, orchestrator.ini)")
    parser.add_argument(
        "--action",
        choices=[str(a) for a in ACTIONS],
        default="update",
        help="the event to step through (default: update)",
    )
    parser.add_argument("--image", help="with --action rebuild: the image to boot")
    parser.add_argument("--pdb", action="store_true", help="break into pdb before each step")
    parser.add_argument(
        "--keep-debug", action="store_true", help="leave the router in debug mode at the end"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        conf = load_config(args.config_file)
        client = ApiClient(
            args.url or default_url(args.config_file), args.token or default_token(args.config_file)
        )
        debug_router(
            client,
            args.router_id,
            lambda resource: debug_machine(conf, resource),
            Action(args.action),
            args.image,
            _break_before_step if args.pdb else None,
            args.keep_debug,
        )
    except (ConfigError, ClientError, WiringError) as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2 if isinstance(err, ConfigError) else 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

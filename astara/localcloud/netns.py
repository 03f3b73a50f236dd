"""Network namespaces, bridges and veths, created so that they are always cleaned up.

A :class:`Topology` owns every namespace it creates. Names carry the topology's prefix
(so they cannot collide with anything else on the host) and are recorded in a registry
file as they are made, so that :func:`cleanup_registry` can remove what an interrupted
run left behind. Bridges and veths are only ever created *inside* namespaces, so deleting
the namespaces removes them too, and the host's root namespace is never touched.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import subprocess
from collections.abc import Sequence
from pathlib import Path

LOG = logging.getLogger(__name__)

IFNAMSIZ = 15  # the kernel's limit on interface names (16 bytes with the NUL)


class CommandError(RuntimeError):
    """A command failed; the message carries its argv, exit status and stderr."""


def run(argv: Sequence[str], *, check: bool = True, timeout: float = 60.0) -> str:
    """Run ``argv`` and return its stdout; raise :class:`CommandError` on failure."""
    result = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if check and result.returncode != 0:
        raise CommandError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout


def list_netns() -> list[str]:
    """Names of all network namespaces on the host."""
    out = run(["ip", "-json", "netns", "list"], check=False).strip()
    if not out:
        return []
    return [entry["name"] for entry in json.loads(out)]


def netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


def delete_netns(name: str) -> None:
    """Delete namespace ``name`` (and so every device in it); no error if it is gone."""
    if netns_exists(name):
        run(["ip", "netns", "delete", name], check=False)


def check_ifname(name: str) -> str:
    if not name or len(name) > IFNAMSIZ or "/" in name or " " in name:
        raise ValueError(f"invalid interface name {name!r} (1-{IFNAMSIZ} chars)")
    return name


class Topology:
    """A set of namespaces, with their bridges and veths, removed as one.

    Use as a context manager, or call :meth:`destroy` in a ``finally``.
    """

    def __init__(self, prefix: str | None = None, registry: str | os.PathLike[str] | None = None):
        self.prefix = prefix or f"at{secrets.token_hex(3)}"
        self.registry = Path(registry) if registry else None
        self.namespaces: list[str] = []

    # -- names -----------------------------------------------------------------------------
    def ns_name(self, short: str) -> str:
        return f"{self.prefix}-{short}"

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> Topology:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def _save(self) -> None:
        if self.registry is not None:
            self.registry.parent.mkdir(parents=True, exist_ok=True)
            self.registry.write_text(json.dumps({"namespaces": self.namespaces}))

    def add_netns(self, short: str) -> str:
        """Create namespace ``<prefix>-<short>`` with loopback up; return its full name."""
        name = self.ns_name(short)
        # Record before creating: an interruption between the two still gets cleaned up.
        self.namespaces.append(name)
        self._save()
        run(["ip", "netns", "add", name])
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        return name

    def destroy(self) -> None:
        """Delete every namespace of this topology, newest first."""
        for name in reversed(self.namespaces):
            delete_netns(name)
        self.namespaces.clear()
        if self.registry is not None:
            self.registry.unlink(missing_ok=True)

    # -- devices ---------------------------------------------------------------------------
    def add_bridge(self, ns: str, bridge: str) -> None:
        """A Linux bridge inside ``ns``, up, with no STP delay."""
        check_ifname(bridge)
        run(["ip", "-n", ns, "link", "add", bridge, "type", "bridge", "forward_delay", "0"])
        run(["ip", "-n", ns, "link", "set", bridge, "up"])

    def add_veth(
        self,
        ns_a: str,
        if_a: str,
        ns_b: str,
        if_b: str,
        *,
        mac_a: str | None = None,
        mac_b: str | None = None,
        master_b: str | None = None,
    ) -> None:
        """A veth pair created directly inside two namespaces (never in the root one).

        ``master_b`` enslaves the ``if_b`` end to that bridge in ``ns_b``.
        """
        check_ifname(if_a)
        check_ifname(if_b)
        argv = ["ip", "-n", ns_a, "link", "add", if_a]
        if mac_a:
            argv += ["address", mac_a]
        argv += ["type", "veth", "peer", "name", if_b, "netns", ns_b]
        if mac_b:
            argv += ["address", mac_b]
        run(argv)
        if master_b:
            run(["ip", "-n", ns_b, "link", "set", if_b, "master", master_b])
        run(["ip", "-n", ns_a, "link", "set", if_a, "up"])
        run(["ip", "-n", ns_b, "link", "set", if_b, "up"])

    def add_address(self, ns: str, ifname: str, cidr: str) -> None:
        argv = ["ip", "-n", ns, "addr", "add", cidr, "dev", ifname]
        if ":" in cidr:
            argv.append("nodad")  # no duplicate-address wait in tests
        run(argv)

    def add_route(self, ns: str, dest: str, via: str) -> None:
        run(["ip", "-n", ns, "route", "add", dest, "via", via])

    def exec(
        self, ns: str, argv: Sequence[str], *, check: bool = True, timeout: float = 60.0
    ) -> str:
        """Run a command inside ``ns`` and return its stdout."""
        return run(["ip", "netns", "exec", ns, *argv], check=check, timeout=timeout)


def cleanup_registry(registry: str | os.PathLike[str]) -> list[str]:
    """Delete the namespaces recorded in a topology registry file; return their names."""
    path = Path(registry)
    try:
        names = json.loads(path.read_text()).get("namespaces", [])
    except (FileNotFoundError, ValueError):
        return []
    for name in reversed(names):
        delete_netns(name)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return list(names)

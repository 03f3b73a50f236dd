"""Network namespaces, bridges and veths, created so that they are always cleaned up.

A :class:`Topology` owns every namespace it creates. Names carry the topology's prefix
(so they cannot collide with anything else on the host) and are recorded in a registry
file as they are made, so that :func:`cleanup_registry` can remove what an interrupted
run left behind. Bridges and veths are only ever created *inside* namespaces, so deleting
the namespaces removes them too, and the host's root namespace is never touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from astara.linux.processes import process_start_time

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


def netns_pids(name: str) -> list[int]:
    """PIDs of the processes living in namespace ``name`` (the kernel's answer, not names)."""
    out = run(["ip", "netns", "pids", name], check=False)
    return [int(pid) for pid in out.split()]


def _stop_pids(pids: list[int], name: str, timeout: float = 5.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # still there: neither gone nor a zombie
            pids = [pid for pid in pids if process_start_time(pid) is not None]
            if not pids:
                return
            time.sleep(0.05)
        LOG.warning("namespace %s: pids %s outlived %s", name, pids, sig.name)


def add_netns(name: str) -> None:
    """Create namespace ``name`` with loopback up (no error if it already exists)."""
    if not netns_exists(name):
        try:
            run(["ip", "netns", "add", name])
        except CommandError as exc:  # another process made it in the meantime
            if not netns_exists(name):
                raise
            LOG.debug("namespace %s: made by someone else meanwhile (%s)", name, exc)
    run(["ip", "-n", name, "link", "set", "lo", "up"])


def delete_netns(name: str) -> None:
    """Delete namespace ``name`` (and so every device in it); no error if it is gone.

    Processes still inside it (they would keep it alive, and outlive it) are stopped first,
    by the PIDs the kernel reports for that namespace.
    """
    if netns_exists(name):
        pids = netns_pids(name)
        if pids:
            LOG.info("namespace %s: stopping pids %s before deleting it", name, pids)
            _stop_pids(pids, name)
        run(["ip", "netns", "delete", name], check=False)


def check_ifname(name: str) -> str:
    if not name or len(name) > IFNAMSIZ or "/" in name or " " in name:
        raise ValueError(f"invalid interface name {name!r} (1-{IFNAMSIZ} chars)")
    return name


# -- devices (always inside a namespace) -----------------------------------------------------
def add_bridge(ns: str, bridge: str) -> None:
    """A Linux bridge inside ``ns``, up, with no STP delay and no multicast snooping.

    Without snooping the bridge floods IPv6 neighbour discovery like a plain switch, so no
    MLD querier is needed. Creating a bridge that already exists is not an error (two
    processes may race to create the same network's bridge).
    """
    check_ifname(bridge)
    argv = ["ip", "-n", ns, "link", "add", bridge, "type", "bridge", "forward_delay", "0"]
    try:
        run([*argv, "mcast_snooping", "0"])
    except CommandError as exc:
        if "File exists" not in str(exc):
            raise
    run(["ip", "-n", ns, "link", "set", bridge, "up"])


def add_veth(
    ns_a: str,
    if_a: str,
    ns_b: str,
    if_b: str,
    *,
    mac_a: str | None = None,
    mac_b: str | None = None,
    master_b: str | None = None,
) -> None:
    """A veth pair created directly inside two namespaces (never in the root one), both up.

    ``master_b`` enslaves the ``if_b`` end to that bridge in ``ns_b``. If a step after the
    pair exists fails, the pair is removed again.
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
    try:
        if master_b:
            run(["ip", "-n", ns_b, "link", "set", if_b, "master", master_b])
        run(["ip", "-n", ns_a, "link", "set", if_a, "up"])
        run(["ip", "-n", ns_b, "link", "set", if_b, "up"])
    except CommandError:
        delete_link(ns_a, if_a)
        raise


def delete_link(ns: str, ifname: str) -> bool:
    """Delete ``ifname`` in ``ns`` (a veth takes its peer with it); False if it did not exist."""
    result = subprocess.run(
        ["ip", "-n", ns, "link", "delete", ifname],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    return result.returncode == 0


def links(ns: str) -> list[dict[str, object]]:
    """The links of ``ns`` as ``ip -json link`` reports them (ifname, address, master, ...)."""
    out = run(["ip", "-n", ns, "-json", "link", "show"]).strip()
    return list(json.loads(out)) if out else []


def ifname_by_mac(ns: str, mac: str) -> str | None:
    """The name of the link with MAC ``mac`` in ``ns`` (appliances rename their NICs)."""
    for link in links(ns):
        if str(link.get("address", "")).lower() == mac.lower():
            return str(link["ifname"])
    return None


def link_exists(ns: str, ifname: str) -> bool:
    return any(link.get("ifname") == ifname for link in links(ns))


def add_address(ns: str, ifname: str, cidr: str) -> None:
    """Add ``cidr`` to ``ifname`` in ``ns`` (IPv6 without duplicate-address detection)."""
    argv = ["ip", "-n", ns, "addr", "add", cidr, "dev", ifname]
    if ":" in cidr:
        argv.append("nodad")
    run(argv)


def set_sysctl(ns: str, key: str, value: str | int) -> None:
    """Set a per-namespace sysctl (net.*) inside ``ns``."""
    run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"{key}={value}"])


def exec_in(ns: str, argv: Sequence[str], *, check: bool = True, timeout: float = 60.0) -> str:
    """Run a command inside ``ns`` and return its stdout."""
    return run(["ip", "netns", "exec", ns, *argv], check=check, timeout=timeout)


class NamespaceRegistry:
    """A file listing namespaces to delete if their owner dies (format of :class:`Topology`).

    Several processes (orchestrator workers, the CLI) may share one registry: every change
    happens under an exclusive ``flock``. :func:`cleanup_registry` removes what it lists.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[list[str]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            names = self.names()
            before = list(names)
            yield names
            if names != before:
                tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
                tmp.write_text(json.dumps({"namespaces": names}))
                os.replace(tmp, self.path)

    def names(self) -> list[str]:
        try:
            return list(json.loads(self.path.read_text()).get("namespaces", []))
        except (FileNotFoundError, ValueError):
            return []

    def create(self, name: str) -> None:
        """Record ``name`` (before it exists: an interruption still gets it cleaned), create it."""
        with self._locked() as names:
            if name not in names:
                names.append(name)
        add_netns(name)

    def delete(self, name: str) -> None:
        """Delete namespace ``name`` (and the processes in it) and forget it."""
        delete_netns(name)
        with self._locked() as names:
            if name in names:
                names.remove(name)

    def delete_all(self) -> list[str]:
        """Delete every recorded namespace, newest first; return their names."""
        names = self.names()
        for name in reversed(names):
            self.delete(name)
        return names


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
        add_netns(name)
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
        add_bridge(ns, bridge)

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
        add_veth(ns_a, if_a, ns_b, if_b, mac_a=mac_a, mac_b=mac_b, master_b=master_b)

    def add_address(self, ns: str, ifname: str, cidr: str) -> None:
        add_address(ns, ifname, cidr)

    def add_route(self, ns: str, dest: str, via: str) -> None:
        run(["ip", "-n", ns, "route", "add", dest, "via", via])

    def exec(
        self, ns: str, argv: Sequence[str], *, check: bool = True, timeout: float = 60.0
    ) -> str:
        """Run a command inside ``ns`` and return its stdout."""
        return exec_in(ns, argv, check=check, timeout=timeout)


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

"""Removed floating IPs lose their conntrack entries, flushed in bounded batches (a real
namespace's conntrack table)."""

from __future__ import annotations

import sys

from astara.linux import netns

REMOVED = [f"172.24.4.{100 + i}" for i in range(30)]
KEPT = [f"172.24.4.{200 + i}" for i in range(10)]


def _tracked(topology: netns.Topology, ns: str) -> set[str]:
    out = topology.exec(ns, ["conntrack", "-L", "-p", "tcp"], check=False)
    return {word[4:] for line in out.splitlines() for word in line.split()
            if word.startswith("dst=") and word[4:] != "10.0.0.5"}  # fmt: skip


def test_many_removed_floating_ips_are_flushed_and_the_others_kept(
    topology: netns.Topology,
) -> None:
    ns = topology.add_netns("ct")
    for address in REMOVED + KEPT:
        topology.exec(ns, ["conntrack", "-I", "-s", "10.0.0.5", "-d", address, "-p", "tcp",
                           "--sport", "1000", "--dport", "80", "--state", "ESTABLISHED",
                           "-u", "ASSURED", "-t", "120"])  # fmt: skip
    assert _tracked(topology, ns) == set(REMOVED + KEPT)
    code = (
        "import sys; from astara.appliance import netops; "
        "netops.flush_conntrack(sys.argv[1:], batch=4)"
    )
    topology.exec(ns, [sys.executable, "-c", code, *REMOVED])
    assert _tracked(topology, ns) == set(KEPT)

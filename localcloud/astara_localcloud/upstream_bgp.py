"""The upstream's BGP peer: bird in ``<prefix>-upstream``, learning the tenant IPv6 prefixes.

Each appliance opens a BGP session from its external IPv6 address to the external IPv6
subnet's gateway (``ext0`` here) and announces its router's tenant IPv6 prefixes; bird
accepts a session from any address of the external subnet (dynamic neighbours, AS
:data:`APPLIANCE_ASN`: the orchestrator's ``asn``), imports what they announce and installs it
in the upstream's kernel table, so the internet stand-in's IPv6 traffic finds its way back to
tenant networks (routed, not NATed). The kit's orchestrator is configured with
``neighbor_asn = UPSTREAM_ASN`` (eBGP).
"""

from __future__ import annotations

import ipaddress
import shutil
from collections.abc import Sequence
from pathlib import Path

from astara.linux.processes import ProcessTracker, TrackedProcess

APPLIANCE_ASN = 64512  # the orchestrator's default asn
UPSTREAM_ASN = 64513  # the kit's neighbor_asn
PROCESS = "upstream-bird"


def render(gateway_cidrs: Sequence[str]) -> str:
    """bird.conf for the upstream: one dynamic BGP listener per external IPv6 subnet."""
    v6 = [ipaddress.ip_interface(c) for c in gateway_cidrs]
    v6 = [i for i in v6 if i.version == 6]
    lines = [
        "router id 10.255.255.254;",
        "protocol device { scan time 10; }",
        "protocol kernel { ipv6 { import none; export all; }; }",
    ]
    for n, gateway in enumerate(v6):
        lines += [
            f"protocol bgp tenants{n} {{",
            f"\tlocal {gateway.ip} as {UPSTREAM_ASN};",
            f"\tneighbor range {gateway.network} as {APPLIANCE_ASN};",
            '\tdynamic name "appliance";',
            "\tipv6 { import all; export none; };",
            "}",
        ]
    return "\n".join(lines) + "\n"


def ensure_bird(
    tracker: ProcessTracker, state_dir: Path, namespace: str, gateway_cidrs: Sequence[str]
) -> TrackedProcess | None:
    """bird in ``namespace`` (started once; None when bird is not installed)."""
    running = tracker.get(PROCESS)
    if running is not None:
        return running
    binary = shutil.which("bird")
    if binary is None:
        return None
    directory = state_dir / "upstream-bird"
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "bird.conf"
    conf.write_text(render(gateway_cidrs))
    return tracker.start(
        PROCESS,
        [binary, "-f", "-c", str(conf), "-s", "bird.ctl"],  # relative: sun_path is short
        cwd=directory,
        netns=namespace,
        log_path=directory / "bird.log",
    )

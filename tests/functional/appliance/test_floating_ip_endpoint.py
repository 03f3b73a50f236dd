"""The orchestrator's appliance client sends a floating-IP-only change through
``PUT /v1/system/config/floating_ips/`` with If-Match, against the real API in a namespace;
a change made behind its back answers 412 and it falls back to the full PUT.

The requests are read from the API's access log (``--verbose``); the result from the kernel:
the nftables maps, the addresses on the external NIC, and a ping to the floating IP.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import pytest

from tests.functional.appliance.lab import (
    API_PORT,
    EXT_ADDR,
    MGMT_ADDR,
    Lab,
    base_document,
    wait_for,
    with_vm2,
)
from tests.functional.appliance.test_many_floating_ips import external_addresses, nft_map

FIP_A, FIP_B = "172.24.4.101", "172.24.4.102"
FIXED = {FIP_A: "10.10.10.6", FIP_B: "10.10.10.5"}  # vm2, vm1


def with_fips(*fips: str, hostname: str = "router-a") -> dict[str, Any]:
    doc = with_vm2(base_document())
    doc["configuration"]["hostname"] = hostname
    doc["configuration"]["floating_ips"] = [{"floating_ip": f, "fixed_ip": FIXED[f]}
                                            for f in fips]  # fmt: skip
    return doc


@pytest.fixture(scope="module")
def verbose_api(lab: Lab) -> Lab:
    """The lab's API again, with its access log; vm1 with its fixed IP, routed by the router."""
    lab.stop("api")
    lab.start_api("--verbose")
    lab.sh(lab.vm1, ["ip", "address", "add", f"{FIXED[FIP_B]}/24", "dev", "eth0"])
    lab.sh(lab.vm1, ["ip", "route", "add", "default", "via", "10.10.10.1"])
    return lab


def push(lab: Lab, steps: list[tuple[int, dict[str, Any]]]) -> list[tuple[str, str, int]]:
    """Put ``steps`` with the orchestrator's client from the orchestrator's namespace: the
    (method, path, status) of each request the API logged meanwhile."""
    log = lab.workdir / "api.log"
    start = log.stat().st_size
    path = lab.workdir / "steps.json"
    path.write_text(json.dumps(steps))
    lab.sh(lab.orch, [sys.executable, "-m", "tests.functional.appliance.push", str(path),
                      MGMT_ADDR, str(API_PORT)], timeout=120)  # fmt: skip
    with log.open() as f:
        f.seek(start)
        text = f.read()
    found = re.findall(r'"(PUT|GET) (\S+) HTTP/1.1" (\d+)|"(PUT|GET) (\S+)" (\d+)', text)
    return [(m[0] or m[3], m[1] or m[4], int(m[2] or m[5])) for m in found]


def check_box(lab: Lab, *fips: str) -> None:
    assert nft_map(lab, "fip_dnat_ip") == {(f, FIXED[f]) for f in fips}
    assert external_addresses(lab) == {f"{EXT_ADDR}/24"} | {f"{f}/32" for f in fips}


CONFIG, FIPS = "/v1/system/config/", "/v1/system/config/floating_ips/"


def test_a_floating_ip_change_goes_through_the_floating_ip_endpoint(verbose_api: Lab) -> None:
    lab = verbose_api
    logged = push(lab, [(0, with_fips(FIP_A)), (0, with_fips(FIP_B)), (0, with_fips(FIP_A, FIP_B))])
    assert logged == [("PUT", CONFIG, 200), ("PUT", FIPS, 200), ("PUT", FIPS, 200)]
    check_box(lab, FIP_A, FIP_B)
    # traffic: the upstream host reaches vm1 through its new floating IP
    wait_for(lambda: lab.ping(lab.upstream, FIP_B), 10, f"a ping to {FIP_B}")


def test_a_change_behind_the_clients_back_answers_412_then_the_full_put(verbose_api: Lab) -> None:
    lab = verbose_api
    logged = push(lab, [
        (0, with_fips(FIP_A)),  # client 0 knows this document and its ETag
        (1, with_fips(FIP_A, hostname="changed-by-another")),  # another client changes it
        (0, with_fips(FIP_B)),  # only the floating IPs differ from what client 0 knows
    ])  # fmt: skip
    assert logged == [("PUT", CONFIG, 200), ("PUT", CONFIG, 200), ("PUT", FIPS, 412),
                      ("PUT", CONFIG, 200)]  # fmt: skip
    code, running = lab.api("GET", "/v1/system/config")
    assert code == 200 and running["configuration"]["hostname"] == "router-a"
    check_box(lab, FIP_B)


def test_a_document_that_differs_elsewhere_is_put_whole(verbose_api: Lab) -> None:
    lab = verbose_api
    logged = push(lab, [(0, with_fips(FIP_A)), (0, with_fips(FIP_A, hostname="router-b"))])
    assert logged == [("PUT", CONFIG, 200), ("PUT", CONFIG, 200)]
    check_box(lab, FIP_A)

"""The API as a client sees it: a property-based run from its OpenAPI (no 5xx), mutual TLS."""

from __future__ import annotations

import re
import subprocess

from astara_localcloud.tls import make_certificates
from tests.functional.appliance.lab import API_PORT, MGMT_ADDR, VENV_BIN, Lab, wait_for


def test_08_schemathesis_finds_no_server_error(lab: Lab) -> None:
    base = f"http://[{MGMT_ADDR}]:{API_PORT}"
    argv = [
        str(VENV_BIN / "schemathesis"), "run", f"{base}/openapi.json", "--url", base,
        "--checks", "not_a_server_error", "--max-examples", "30", "--seed", "4242",
        "--generation-database", "none", "--request-timeout", "20",
    ]  # fmt: skip
    result = subprocess.run(["ip", "netns", "exec", lab.orch, *argv], capture_output=True,
                            text=True, timeout=400, cwd=lab.workdir)  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:]
    assert re.search(r"Tested: 8\b", result.stdout), result.stdout[-3000:]
    cases = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert cases and int(cases[1]) > 100 and cases[1] == cases[2], result.stdout[-3000:]
    # The PUT reached the appliance: its log shows refused and applied documents.
    assert "configuration applied" in (lab.workdir / "api.log").read_text()


def test_09_mutual_tls_accepts_only_clients_signed_by_the_ca(lab: Lab) -> None:
    server_ip, mac = "fd00:7::10", "02:00:00:00:07:10"
    tls_ns = lab.topo.add_netns("tls")
    client_ns = lab.topo.add_netns("tlsc")
    lab.topo.add_veth(tls_ns, "tapt", client_ns, "eth0", mac_a=mac)
    lab.topo.add_address(client_ns, "eth0", "fd00:7::1/64")
    d = lab.workdir / "tls"
    d.mkdir()
    make_certificates(d, f"IP:{server_ip}")
    state = str(d / "state")
    lab.sh(tls_ns, [str(VENV_BIN / "astara-configure-management"), "--state-dir", state, mac,
                    f"{server_ip}/64"])  # fmt: skip
    lab.spawn("tls-api", tls_ns, [
        str(VENV_BIN / "astara-appliance-api"), "--state-dir", state, "--port", "5443",
        "--tls-cert", str(d / "server.pem"), "--tls-key", str(d / "server.key"),
        "--tls-ca", str(d / "ca.pem"),
    ])  # fmt: skip
    url = f"https://[{server_ip}]:5443/v1/system/config"

    def curl(*cert: str) -> subprocess.CompletedProcess[str]:
        argv = ["curl", "-sS", "-g", "-m", "5", "--cacert", str(d / "ca.pem"), *cert, url]
        return subprocess.run(["ip", "netns", "exec", client_ns, *argv], capture_output=True,
                              text=True, timeout=20)  # fmt: skip

    good = ("--cert", str(d / "client.pem"), "--key", str(d / "client.key"))
    answer = wait_for(lambda: curl(*good).returncode == 0 and curl(*good), 20, "the TLS API")
    assert '"version":1' in answer.stdout
    assert curl().returncode != 0  # no client certificate
    assert curl("--cert", str(d / "rogue.pem"), "--key", str(d / "rogue.key")).returncode != 0
    http = url.replace("https", "http")
    plain = subprocess.run(["ip", "netns", "exec", client_ns, "curl", "-sS", "-g", "-m", "5", http],
                           capture_output=True, timeout=20)  # fmt: skip
    assert plain.returncode != 0 or b'"version"' not in plain.stdout

"""End-to-end (issue 10): the orchestrator and its appliances speak mutual TLS by default.

The kit as ``astara-local up`` makes it (its CA and the orchestrator's client certificate at
``up``, each appliance's server certificate at boot). Every probe of the appliance API runs
where the orchestrator runs, in the management namespace, with curl: a positive control
(the orchestrator's own certificate) beside each refusal, so the refusals cannot pass for a
dead appliance.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from astara.providers.certificates import Authority, write_private
from tests.e2e.kit import E2EKit

PROJECT = "e2e-tls-tenant"


@pytest.fixture(scope="module")
def router(kit: E2EKit) -> Any:
    """A router with a VM behind it that reaches the internet stand-in: the orchestrator
    configured the appliance over mutual TLS (there is no other way in)."""
    router, _net, _subnet, seconds = kit.router_with_vm(
        ("tls-net", "tls-router"), "10.57.0.0/24", "t1", PROJECT
    )
    print(f"\nrouter create -> VM traffic, over mutual TLS: {seconds:.1f}s")
    return router


def curl(kit: E2EKit, url: str, *options: str) -> subprocess.CompletedProcess[str]:
    """curl in the management namespace: ``-w`` prints the HTTP status (000: no answer)."""
    return subprocess.run(
        ["ip", "netns", "exec", kit.cloud.fabric.management_namespace,
         "curl", "-sS", "-g", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", *options, url],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def https(kit: E2EKit, address: str, cert: Path | None, key: Path | None) -> str:
    certs = kit.cloud.orchestrator.certificates
    options = ["--cacert", str(certs.ca_file)]
    if cert is not None and key is not None:
        options += ["--cert", str(cert), "--key", str(key)]
    result = curl(kit, f"https://[{address}]:5000/v1/status/", *options)
    return result.stdout + (f" ({result.stderr.strip()})" if result.returncode else "")


def test_the_orchestrator_configures_the_router_over_mutual_tls(kit: E2EKit, router: Any) -> None:
    assert kit.ping("t1")
    shown = kit.show(router.id)
    assert shown is not None and shown["instance_status"] == "configured"
    assert "plain HTTP" not in kit.log_tail(10**7)


def test_plain_http_to_the_appliance_is_refused(kit: E2EKit, router: Any) -> None:
    instance = kit.wait_active(router.id)
    address = instance.management_address
    assert address
    certs = kit.cloud.orchestrator.certificates
    assert https(kit, address, certs.cert_file, certs.key_file) == "200"  # control
    plain = curl(kit, f"http://[{address}]:5000/v1/status/")
    assert plain.stdout == "000" and plain.returncode != 0, plain


def test_a_client_without_a_certificate_or_of_another_ca_is_refused(
    kit: E2EKit, router: Any, tmp_path: Path
) -> None:
    address = kit.wait_active(router.id).management_address
    assert address
    rogue = Authority.create("rogue-ca")
    cert, key = rogue.issue_client("astara-orchestrator")  # the same name, another CA
    write_private(tmp_path / "rogue.pem", cert)
    write_private(tmp_path / "rogue.key", key)
    certs = kit.cloud.orchestrator.certificates
    assert https(kit, address, certs.cert_file, certs.key_file) == "200"  # control
    assert https(kit, address, tmp_path / "rogue.pem", tmp_path / "rogue.key").startswith("000")
    assert https(kit, address, None, None).startswith("000")


def test_an_appliances_certificate_is_its_own_and_private(kit: E2EKit, router: Any) -> None:
    instance = kit.wait_active(router.id)
    tls_dir = kit.state_dir / "netns" / "appliances" / router.id / "appliance" / "tls"
    modes = {p.name: stat.S_IMODE(os.stat(p).st_mode) for p in tls_dir.iterdir()}
    assert modes == {"server.pem": 0o600, "server.key": 0o600, "ca.pem": 0o600}
    from cryptography import x509

    cert = x509.load_pem_x509_certificate((tls_dir / "server.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == [
        instance.management_address
    ]
    # Its key opens no other appliance: it is a server certificate only.
    certs = kit.cloud.orchestrator.certificates
    assert instance.management_address
    assert https(kit, instance.management_address, tls_dir / "server.pem",
                 tls_dir / "server.key").startswith("000")  # fmt: skip
    assert https(kit, instance.management_address, certs.cert_file, certs.key_file) == "200"
    assert stat.S_IMODE(os.stat(certs.ca_key_file).st_mode) == 0o600

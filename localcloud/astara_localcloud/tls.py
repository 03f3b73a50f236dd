"""Throwaway certificates for TLS tests: a CA, a server and a client certificate, a rogue CA."""

from __future__ import annotations

import subprocess
from pathlib import Path

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(workdir: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=workdir, check=True, capture_output=True, timeout=60)


def make_certificates(d: Path, server_san: str) -> None:
    """In ``d``: ca.pem/.key; server.pem/.key for ``server_san`` (e.g. ``IP:127.0.0.1``);
    client.pem/.key (clientAuth); rogue.pem/.key, a self-signed CA nobody trusts."""
    _openssl(d, "req", "-x509", *EC, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
             "-subj", "/CN=astara-test-ca")  # fmt: skip
    for name, ext in (("server", f"subjectAltName={server_san}"),
                      ("client", "extendedKeyUsage=clientAuth")):  # fmt: skip
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl(d, "req", *EC, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}")  # fmt: skip
        _openssl(d, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", "1",
                 "-extfile", f"{name}.ext")  # fmt: skip
    _openssl(d, "req", "-x509", *EC, "-keyout", "rogue.key", "-out", "rogue.pem", "-days", "1",
             "-subj", "/CN=rogue")  # fmt: skip

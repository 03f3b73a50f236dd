"""Certificates for mutual TLS between the orchestrator and its appliances (``cryptography``).

- :meth:`Authority.create`: a CA (the local kit makes one at ``up``; an operator may use
  their own, or this, e.g. ``python -m astara.providers.certificates ca DIR``);
- :meth:`Authority.issue_server`: one appliance's server certificate, subject and SAN its
  management address, extended key usage serverAuth only (so it cannot act as a client);
- :meth:`Authority.issue_client`: the orchestrator's client certificate, clientAuth only.

Keys are ECDSA P-256 (small: an appliance's bundle fits easily in Nova's user data). Every
private key written here is 0600.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from astara.appliance.tls_files import ServerFiles

PrivateKey = ec.EllipticCurvePrivateKey
BACKDATE = datetime.timedelta(minutes=5)  # clocks of appliances just booted may lag a little


def write_private(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` readable by its owner only (0600), replacing it atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass(frozen=True)
class Authority:
    """A CA certificate and its key; issues the appliances' and the orchestrator's certificates.

    ``trust_pem``: the CA file as given (during a CA rotation, the old and the new CA): what
    each appliance is given to check its clients against; default: the CA certificate."""

    cert: x509.Certificate
    key: PrivateKey
    trust_pem: bytes | None = None

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @classmethod
    def create(cls, common_name: str = "astara-appliance-ca", days: int = 3650) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @classmethod
    def load(cls, cert_file: str | os.PathLike[str], key_file: str | os.PathLike[str]) -> Authority:
        """ValueError naming the file that is not a CA certificate or an EC private key. The
        key must be that of the first certificate in ``cert_file`` (which may hold more)."""
        trust = Path(cert_file).read_bytes()
        try:
            cert = x509.load_pem_x509_certificate(trust)
        except ValueError as exc:
            raise ValueError(f"{cert_file}: not a PEM certificate ({exc})") from None
        try:
            key = serialization.load_pem_private_key(Path(key_file).read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{key_file}: not an unencrypted PEM private key ({exc})") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_file}: the CA key must be an EC key (P-256)")
        if key.public_key() != cert.public_key():
            raise ValueError(f"{key_file} is not the key of the first certificate in {cert_file}")
        return cls(cert, key, trust)

    def save(self, cert_file: str | os.PathLike[str], key_file: str | os.PathLike[str]) -> None:
        write_private(cert_file, self.cert_pem)
        write_private(key_file, _key_pem(self.key))

    def _issue(
        self,
        subject: str,
        usage: x509.ObjectIdentifier,
        days: float,
        san: x509.GeneralName | None = None,
    ) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(subject))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
        )
        if san is not None:
            builder = builder.add_extension(x509.SubjectAlternativeName([san]), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)

    def issue_server(self, address: str, days: float = 365) -> ServerFiles:
        """An appliance's server certificate for its management ``address`` (an IP)."""
        ip = ipaddress.ip_address(address.strip("[]"))
        cert, key = self._issue(str(ip), ExtendedKeyUsageOID.SERVER_AUTH, days, x509.IPAddress(ip))
        return ServerFiles(cert.decode(), key.decode(), (self.trust_pem or self.cert_pem).decode())

    def issue_client(
        self, common_name: str = "astara-orchestrator", days: float = 365
    ) -> tuple[bytes, bytes]:
        """The orchestrator's client certificate and key (PEM)."""
        return self._issue(common_name, ExtendedKeyUsageOID.CLIENT_AUTH, days)


def main(argv: Sequence[str] | None = None) -> int:
    """Make a CA, or an orchestrator client certificate from one (files 0600)."""
    parser = argparse.ArgumentParser(prog="python -m astara.providers.certificates",
                                     description=main.__doc__)  # fmt: skip
    sub = parser.add_subparsers(dest="what", required=True)
    ca = sub.add_parser("ca", help="a new CA: DIR/ca.pem and DIR/ca.key")
    ca.add_argument("dir", type=Path)
    ca.add_argument("--days", type=int, default=3650)
    client = sub.add_parser("client", help="DIR/client.pem and DIR/client.key from DIR/ca.*")
    client.add_argument("dir", type=Path)
    client.add_argument("--days", type=int, default=365)
    client.add_argument("--name", default="astara-orchestrator")
    args = parser.parse_args(argv)
    args.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if args.what == "ca":
        Authority.create(days=args.days).save(args.dir / "ca.pem", args.dir / "ca.key")
    else:
        cert, key = Authority.load(args.dir / "ca.pem", args.dir / "ca.key").issue_client(
            args.name, args.days
        )
        write_private(args.dir / "client.pem", cert)
        write_private(args.dir / "client.key", key)
    print(f"written in {args.dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

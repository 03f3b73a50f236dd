"""Mutual TLS between the appliance client and an appliance: options, contexts, certificates.

The appliance side is a real TLS server on loopback (the unit tests' HTTP stand-in with its
listening socket wrapped), the certificates real ones from :mod:`astara.providers.certificates`.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from oslo_config import cfg

from astara.appliance.tls_files import ServerFiles, api_arguments
from astara.core.interfaces import ApplianceError
from astara.core.settings import ConfigError
from astara.orchestrator.appliance_client import HttpApplianceClient
from astara.orchestrator.config import register_opts
from astara.providers import appliance_tls
from astara.providers.appliance_tls import ApplianceTLS
from astara.providers.certificates import Authority, write_private
from tests.unit.orchestrator.test_appliance_client import StandIn


def _conf(**tls: object) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    register_opts(conf)
    conf([], default_config_files=[])
    for name, value in tls.items():
        conf.set_override(name, value, group="appliance_tls")
    return conf


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca.pem/ca.key, client.pem/client.key of the CA; rogue-client.* of another CA."""
    d = tmp_path_factory.mktemp("pki")
    ca = Authority.create()
    ca.save(d / "ca.pem", d / "ca.key")
    cert, key = ca.issue_client()
    write_private(d / "client.pem", cert)
    write_private(d / "client.key", key)
    cert, key = Authority.create("rogue").issue_client()
    write_private(d / "rogue-client.pem", cert)
    write_private(d / "rogue-client.key", key)
    return d


def _files(d: Path, client: str = "client") -> dict[str, object]:
    return {
        "ca_file": str(d / "ca.pem"),
        "ca_key_file": str(d / "ca.key"),
        "cert_file": str(d / f"{client}.pem"),
        "key_file": str(d / f"{client}.key"),
    }


class TlsStandIn(StandIn):
    """The HTTP stand-in behind TLS with a server certificate for ``host``; clients must
    present a certificate of the CA in ``issued``."""

    def __init__(self, host: str, issued: ServerFiles, tmp: Path) -> None:
        super().__init__(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
        issued.write(tmp)
        argv = api_arguments(tmp)
        cert, key, ca = argv[1], argv[3], argv[5]
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca)
        context.load_cert_chain(cert, key)
        context.verify_mode = ssl.CERT_REQUIRED
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)


@pytest.fixture
def appliance(pki: Path, tmp_path: Path) -> Iterator[TlsStandIn]:
    ca = Authority.load(pki / "ca.pem", pki / "ca.key")
    server = TlsStandIn("127.0.0.1", ca.issue_server("127.0.0.1", days=1), tmp_path)
    try:
        yield server
    finally:
        server.close()


def _client(conf: cfg.ConfigOpts) -> HttpApplianceClient:
    return HttpApplianceClient.from_conf(conf)


def test_tls_is_on_by_default_and_needs_its_files() -> None:
    with pytest.raises(ConfigError, match=r"\[appliance_tls\] ca_file must be set.*plain_http"):
        ApplianceTLS.from_conf(_conf())


@pytest.mark.parametrize("option", ["ca_file", "cert_file", "key_file"])
def test_a_missing_or_unreadable_file_is_named_at_start(pki: Path, option: str) -> None:
    missing = _conf(**{**_files(pki), option: str(pki / "nope.pem")})
    with pytest.raises(ConfigError, match=rf"\[appliance_tls\] {option}: cannot read .*nope"):
        ApplianceTLS.from_conf(missing)
    a_directory = _conf(**{**_files(pki), option: str(pki)})
    with pytest.raises(ConfigError, match=rf"\[appliance_tls\] {option}: cannot read"):
        ApplianceTLS.from_conf(a_directory)


def test_a_certificate_with_another_key_is_refused_at_start(pki: Path) -> None:
    mixed = _conf(**{**_files(pki), "key_file": str(pki / "rogue-client.key")})
    with pytest.raises(ConfigError, match="cert_file/key_file"):
        ApplianceTLS.from_conf(mixed)


def test_the_ca_key_must_be_the_ca_certificates_key(pki: Path) -> None:
    tls = ApplianceTLS.from_conf(_conf(**{**_files(pki), "ca_key_file": str(pki / "client.key")}))
    assert tls is not None
    with pytest.raises(ConfigError, match=r"ca_key_file: .*client.key is not the key of the first"):
        tls.authority()


def test_plain_http_is_an_explicit_opt_out_logged_at_start_and_per_appliance(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(appliance_tls, "_warned_plain", False)
    caplog.set_level(logging.WARNING)
    assert ApplianceTLS.from_conf(_conf(plain_http=True)) is None
    assert [r.getMessage() for r in caplog.records] == [appliance_tls.PLAIN_WARNING]
    plain = StandIn(socket.AF_INET, "127.0.0.1")
    client = _client(_conf(plain_http=True))
    try:
        caplog.clear()
        for _ in range(3):
            assert client.is_alive("127.0.0.1", plain.port)
        client.get_config("127.0.0.1", plain.port)
        client.is_alive("127.0.0.2", plain.port)
    finally:
        client.close()
        plain.close()
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 2 and "127.0.0.1: plain HTTP" in warned[0] and "127.0.0.2" in warned[1]


def test_the_client_speaks_mutual_tls_on_both_paths(pki: Path, appliance: TlsStandIn) -> None:
    client = _client(_conf(**_files(pki)))
    try:
        assert client.is_alive("127.0.0.1", appliance.port)
        assert client.get_config("127.0.0.1", appliance.port) == {"configuration": {"networks": []}}
        client.put_config("127.0.0.1", appliance.port, {"configuration": {}})
    finally:
        client.close()
    assert [(m, p) for m, p, *_ in appliance.requests] == [
        ("GET", "/v1/status/"), ("GET", "/v1/system/config"), ("PUT", "/v1/system/config/"),
    ]  # fmt: skip


def _assert_refused(client: HttpApplianceClient, appliance: TlsStandIn) -> None:
    """Neither the aliveness check nor a read gets through, and the appliance saw no request."""
    try:
        assert not client.is_alive("127.0.0.1", appliance.port)
        with pytest.raises(ApplianceError):
            client.get_config("127.0.0.1", appliance.port)
    finally:
        client.close()
    assert appliance.requests == []


def test_a_client_certificate_of_another_ca_is_refused(pki: Path, appliance: TlsStandIn) -> None:
    _assert_refused(_client(_conf(**_files(pki, client="rogue-client"))), appliance)


def test_plain_http_to_a_tls_appliance_gets_no_answer(pki: Path, appliance: TlsStandIn) -> None:
    _assert_refused(HttpApplianceClient(alive_timeout=2, tls=None), appliance)


def test_an_appliance_certificate_for_another_address_is_refused(pki: Path, tmp_path: Path) -> None:
    ca = Authority.load(pki / "ca.pem", pki / "ca.key")
    impostor = TlsStandIn("127.0.0.1", ca.issue_server("127.0.0.9", days=1), tmp_path)
    client = _client(_conf(**_files(pki)))
    try:
        assert not client.is_alive("127.0.0.1", impostor.port)
        with pytest.raises(ApplianceError, match="CERTIFICATE_VERIFY_FAILED"):
            client.get_config("127.0.0.1", impostor.port)
    finally:
        client.close()
        impostor.close()


def test_an_appliance_certificate_cannot_act_as_a_client(pki: Path, appliance: TlsStandIn) -> None:
    """A compromised appliance's own certificate (serverAuth only) opens no other appliance."""
    ca = Authority.load(pki / "ca.pem", pki / "ca.key")
    stolen = ca.issue_server("127.0.0.5", days=1)
    write_private(pki / "stolen.pem", stolen.cert.encode())
    write_private(pki / "stolen.key", stolen.key.encode())
    client = _client(_conf(**_files(pki, client="stolen")))
    try:
        assert not client.is_alive("127.0.0.1", appliance.port)
    finally:
        client.close()
    assert appliance.requests == []


def test_server_files_round_trip_and_are_private(pki: Path, tmp_path: Path) -> None:
    ca = Authority.load(pki / "ca.pem", pki / "ca.key")
    issued = ca.issue_server("fdca:3ba5:a17a:acda::17")
    assert ServerFiles.decode(issued.encode()) == issued
    assert len(issued.encode()) < 4096  # leaves Nova's 64 KiB user data to the rest
    directory = issued.write(tmp_path)
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    for path in directory.iterdir():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(pki / "ca.key").st_mode) == 0o600
    for bad in ("%%%", "e30=", "eyJjZXJ0IjogMX0="):  # not base64; {}; {"cert": 1}
        with pytest.raises(ValueError, match="TLS bundle"):
            ServerFiles.decode(bad)


def test_during_a_ca_rotation_appliances_trust_both_cas(pki: Path, tmp_path: Path) -> None:
    """ca_file holds the new and the old CA: certificates come from the first, and each
    appliance is given both to check the orchestrator's client certificate against."""
    old = Authority.load(pki / "ca.pem", pki / "ca.key")
    new = Authority.create("new-ca")
    (tmp_path / "both.pem").write_bytes(new.cert_pem + old.cert_pem)
    new.save(tmp_path / "unused.pem", tmp_path / "new.key")
    issuer = Authority.load(tmp_path / "both.pem", tmp_path / "new.key")
    issued = issuer.issue_server("127.0.0.1", days=1)
    assert issued.ca == (new.cert_pem + old.cert_pem).decode()
    server = TlsStandIn("127.0.0.1", issued, tmp_path)
    try:
        for n, client_ca in enumerate((old, new)):  # a client certificate of either CA is taken
            cert, key = client_ca.issue_client()
            write_private(tmp_path / f"c{n}.pem", cert)
            write_private(tmp_path / f"c{n}.key", key)
            tls = ApplianceTLS(str(tmp_path / "both.pem"), str(tmp_path / f"c{n}.pem"),
                               str(tmp_path / f"c{n}.key"))  # fmt: skip
            client = HttpApplianceClient(alive_timeout=2, tls=tls.client_context())
            try:
                assert client.is_alive("127.0.0.1", server.port)
            finally:
                client.close()
    finally:
        server.close()


def test_a_kept_tls_session_does_not_let_an_impostor_pass(
    pki: Path, appliance: TlsStandIn, tmp_path: Path
) -> None:
    """The aliveness check resumes an appliance's last TLS session; an impostor offered that
    session (another key, a certificate for another address) still fails the check."""
    ca = Authority.load(pki / "ca.pem", pki / "ca.key")
    impostor = TlsStandIn("127.0.0.1", ca.issue_server("127.0.0.9", days=1), tmp_path)
    client = _client(_conf(**_files(pki)))
    try:
        assert client.is_alive("127.0.0.1", appliance.port)
        assert client.is_alive("127.0.0.1", appliance.port)  # resumed
        kept = client._sessions[f"127.0.0.1:{appliance.port}"]
        client._sessions[f"127.0.0.1:{impostor.port}"] = kept
        assert not client.is_alive("127.0.0.1", impostor.port)
    finally:
        client.close()
        impostor.close()
    assert impostor.requests == []

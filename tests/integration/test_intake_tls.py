"""The listener reaches RabbitMQ over TLS with the [oslo_messaging_rabbit] options.

The broker here speaks plain AMQP on loopback, so the test puts a TLS terminator in front of it
(this process: TLS on one side, the real broker on the other). A notification published to the
broker reaches the listener only through that TLS link; a broker certificate from an untrusted
CA is refused.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kombu
import pytest
from oslo_config import cfg

from astara.core.fakes import RecordingControl
from astara.orchestrator import config
from astara.orchestrator.intake import NotificationListener, rabbit_ssl
from astara_localcloud import rabbit
from astara_localcloud.tls import make_certificates


class TlsTerminator:
    """TLS on 127.0.0.1:<port>, relayed in clear to the local broker. Counts handshakes."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.handshakes = 0
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self.server.accept()
            except OSError:
                return  # closed
            try:
                client = self.context.wrap_socket(raw, server_side=True)
            except (OSError, ssl.SSLError):
                raw.close()  # the client refused our certificate
                continue
            self.handshakes += 1
            broker = socket.create_connection((rabbit.HOST, rabbit.PORT))
            self.sockets += [client, broker]
            for a, b in ((client, broker), (broker, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.server.close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("rabbit-tls")
    make_certificates(d, "IP:127.0.0.1")
    return d


@pytest.fixture
def terminator(certs: Path) -> Iterator[TlsTerminator]:
    term = TlsTerminator(certs / "server.pem", certs / "server.key")
    yield term
    term.close()


def tls_conf(**options: str | bool) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    config.register_opts(conf)
    conf([], project="astara-test", default_config_files=[], default_config_dirs=[])
    for name, value in options.items():
        conf.set_override(name, value, group="oslo_messaging_rabbit")
    return conf


def listener_through(conf: cfg.ConfigOpts, port: int, vhost: str) -> NotificationListener:
    url = f"rabbit://{rabbit.USER}:{rabbit.PASSWORD}@127.0.0.1:{port}/{vhost}"
    lookup: Any = object()  # operator commands need no Neutron lookup
    return NotificationListener(conf, RecordingControl(), url, lookup=lookup, accept_commands=True)


def test_notifications_arrive_over_tls(certs, terminator, rabbitmq, rabbit_vhost):
    conf = tls_conf(ssl=True, ssl_ca_file=str(certs / "ca.pem"))
    listener = listener_through(conf, terminator.port, rabbit_vhost)
    control: RecordingControl = listener._control  # type: ignore[assignment]
    try:
        assert listener.start(timeout=15), "listener did not bind its queue over TLS"
        router_id = str(uuid.uuid4())
        note = {"event_type": "astara.command", "priority": "INFO",
                "payload": {"command": "router-update", "router_id": router_id}}  # fmt: skip
        with kombu.Connection(rabbit.amqp_url(rabbit_vhost)) as conn:  # plain, to the broker
            conn.Producer().publish(
                json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(note)}),
                exchange=kombu.Exchange("neutron", type="topic", durable=False),
                routing_key="notifications.info",
            )
        event = control.wait_for(lambda e: e.resource.id == router_id)
        assert event.body["command"] == "update"
        assert terminator.handshakes >= 1
    finally:
        listener.stop()


def test_a_broker_certificate_from_another_ca_is_refused(certs, terminator, rabbitmq, rabbit_vhost):
    conf = tls_conf(ssl=True, ssl_ca_file=str(certs / "rogue.pem"))
    listener = listener_through(conf, terminator.port, rabbit_vhost)
    try:
        assert not listener.start(timeout=3)
        assert listener.counters().get("reconnects", 0) >= 1
        assert terminator.handshakes == 0
    finally:
        listener.stop()


def test_tls_options_are_read_and_checked(certs):
    assert rabbit_ssl(tls_conf(), "rabbit://h/") is None
    assert rabbit_ssl(tls_conf(), "rabbit://h/?ssl=1") == {"cert_reqs": ssl.CERT_REQUIRED}
    conf = tls_conf(ssl=True, ssl_ca_file=str(certs / "ca.pem"),
                    ssl_cert_file=str(certs / "client.pem"),
                    ssl_key_file=str(certs / "client.key"))  # fmt: skip
    assert rabbit_ssl(conf, "rabbit://h/") == {
        "cert_reqs": ssl.CERT_REQUIRED,
        "ca_certs": str(certs / "ca.pem"),
        "certfile": str(certs / "client.pem"),
        "keyfile": str(certs / "client.key"),
    }
    with pytest.raises(ValueError, match=r"\[oslo_messaging_rabbit\] ssl_ca_file"):
        rabbit_ssl(tls_conf(ssl=True, ssl_ca_file="/nonexistent/ca.pem"), "rabbit://h/")
    with pytest.raises(ValueError, match="without ssl_cert_file"):
        rabbit_ssl(tls_conf(ssl=True, ssl_key_file=str(certs / "client.key")), "rabbit://h/")

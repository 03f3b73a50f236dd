"""The relay carries TCP between the root loopback and a namespace's loopback, both ways."""

from __future__ import annotations

import socket
import socketserver
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from astara.linux import netns
from astara_localcloud.fabric import KitFabric
from astara_localcloud.services import free_port


class _Echo(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline()
        self.wfile.write(b"echo " + line)


@pytest.fixture
def root_echo() -> Iterator[int]:
    """An echo server on the root namespace's loopback; yields its port."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def start_relay(tracker, tmp_path, *forwards: list[str], optional=()) -> None:  # type: ignore[no-untyped-def]
    ready = tmp_path / "ready"
    argv = [sys.executable, "-m", "astara_localcloud.relay", "--ready-file", str(ready)]
    for forward in forwards:
        argv += ["--forward", *forward]
    for forward in optional:
        argv += ["--optional-forward", *forward]
    tracker.start(f"relay-{tmp_path.name}", argv, log_path=tmp_path / "relay.log")
    deadline = time.monotonic() + 10
    while not ready.exists():
        assert tracker.get(f"relay-{tmp_path.name}") is not None, (
            tmp_path / "relay.log"
        ).read_text()
        assert time.monotonic() < deadline, "relay not ready in 10s"
        time.sleep(0.02)


ECHO_CLIENT = (
    "import socket,sys; s=socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=5);"
    "s.sendall(b'hello\\n'); print(s.makefile().readline().strip())"
)


def test_root_service_appears_inside_a_namespace(
    fabric: KitFabric, process_tracker, tmp_path, root_echo
):
    ns = fabric.ns_name("client")
    fabric.registry.create(ns)
    inner = free_port()
    start_relay(
        process_tracker, tmp_path, [ns, "127.0.0.1", str(inner), "-", "127.0.0.1", str(root_echo)]
    )
    try:
        out = netns.exec_in(ns, [sys.executable, "-c", ECHO_CLIENT, str(inner)])
        assert out.strip() == "echo hello"
        # Without the relay the namespace's loopback has nothing on the echo server's port.
        direct = netns.exec_in(ns, [sys.executable, "-c", ECHO_CLIENT, str(root_echo)], check=False)
        assert "echo hello" not in direct
    finally:
        process_tracker.stop(f"relay-{tmp_path.name}")


def test_namespace_service_appears_on_the_root_loopback(
    fabric: KitFabric, process_tracker, tmp_path
):
    ns = fabric.ns_name("server")
    fabric.registry.create(ns)
    server = (
        "import socketserver as s\n"
        "class H(s.StreamRequestHandler):\n"
        " def handle(self): self.wfile.write(b'echo ' + self.rfile.readline())\n"
        "s.TCPServer(('127.0.0.1', 7777), H).serve_forever()"
    )
    process_tracker.start(f"echo-{tmp_path.name}", [sys.executable, "-c", server], netns=ns)
    outer = free_port()
    try:
        # The echo server may need a moment to bind: the relay connects on demand, so retry.
        start_relay(
            process_tracker, tmp_path, ["-", "127.0.0.1", str(outer), ns, "127.0.0.1", "7777"]
        )
        deadline = time.monotonic() + 10
        while True:
            with socket.create_connection(("127.0.0.1", outer), timeout=5) as sock:
                sock.sendall(b"hi\n")
                answer = sock.makefile().readline()
            if answer or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert answer.strip() == "echo hi"
    finally:
        process_tracker.stop(f"relay-{tmp_path.name}")
        process_tracker.stop(f"echo-{tmp_path.name}")


def test_a_taken_optional_port_does_not_stop_the_relay(
    fabric: KitFabric, process_tracker, tmp_path, root_echo
):
    ns = fabric.ns_name("client")
    fabric.registry.create(ns)
    inner = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = str(taken.getsockname()[1])
        start_relay(
            process_tracker,
            tmp_path,
            [ns, "127.0.0.1", str(inner), "-", "127.0.0.1", str(root_echo)],
            optional=[["-", "127.0.0.1", busy, ns, "127.0.0.1", "80"]],
        )
        try:
            out = netns.exec_in(ns, [sys.executable, "-c", ECHO_CLIENT, str(inner)])
            assert out.strip() == "echo hello"
            assert "not served" in (tmp_path / "relay.log").read_text()
        finally:
            process_tracker.stop(f"relay-{tmp_path.name}")

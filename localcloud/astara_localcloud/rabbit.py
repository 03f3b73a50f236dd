"""RabbitMQ on loopback: make sure it runs, and give callers their own virtual hosts."""

from __future__ import annotations

import logging
import os
import pwd
import socket
import subprocess
import time
import urllib.parse

LOG = logging.getLogger(__name__)

HOST = "127.0.0.1"
PORT = 5672
USER = "guest"
PASSWORD = "guest"


def is_listening(host: str = HOST, port: int = PORT, timeout: float = 1.0) -> bool:
    with socket.socket() as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


def ensure_running(timeout: float = 60.0) -> None:
    """Start RabbitMQ bound to loopback if nothing listens on 127.0.0.1:5672."""
    if is_listening():
        return
    LOG.info("RabbitMQ is not running: starting it on %s:%d", HOST, PORT)
    env = dict(os.environ)
    env.update(
        RABBITMQ_NODE_IP_ADDRESS=HOST,
        ERL_EPMD_ADDRESS=HOST,
        RABBITMQ_NODE_PORT=str(PORT),
        HOME=pwd.getpwnam("rabbitmq").pw_dir if _has_user("rabbitmq") else env.get("HOME", "/"),
    )
    argv = ["rabbitmq-server", "-detached"]
    if os.geteuid() == 0 and _has_user("rabbitmq"):
        argv = ["runuser", "-u", "rabbitmq", "--", *argv]
    subprocess.run(argv, env=env, check=True, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_listening():
            return
        time.sleep(0.5)
    raise RuntimeError(f"RabbitMQ did not start listening on {HOST}:{PORT} in {timeout:.0f}s")


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _ctl(*args: str) -> str:
    result = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if result.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def add_vhost(vhost: str) -> str:
    """Create ``vhost`` with full rights for the guest user; return its transport URL."""
    _ctl("add_vhost", vhost)
    _ctl("set_permissions", "-p", vhost, USER, ".*", ".*", ".*")
    return transport_url(vhost)


def delete_vhost(vhost: str) -> None:
    """Delete ``vhost`` and every queue and exchange in it."""
    subprocess.run(
        ["rabbitmqctl", "-q", "delete_vhost", vhost],
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )


def list_vhosts() -> list[str]:
    return [line.strip() for line in _ctl("list_vhosts", "--no-table-headers").splitlines()]


def transport_url(vhost: str = "/") -> str:
    """The oslo.messaging transport URL for ``vhost`` on the local broker."""
    return f"rabbit://{USER}:{PASSWORD}@{HOST}:{PORT}/{urllib.parse.quote(vhost, safe='')}"


def amqp_url(vhost: str = "/") -> str:
    """The kombu/AMQP URL for ``vhost`` on the local broker."""
    return f"amqp://{USER}:{PASSWORD}@{HOST}:{PORT}/{urllib.parse.quote(vhost, safe='')}"

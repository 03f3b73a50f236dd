"""Several orchestrators in the kit, over a coordination service the kit starts itself.

``astara-local up --orchestrators 3 --coordination zookeeper``: the kit's coordination daemon
(Debian's ZooKeeper, etcd or Redis) runs from ``<state>/coordination/`` on a free loopback
port, recorded by PID in the kit's tracker (pifpaf is not used here: its fixtures stop their
daemons when the process that started them ends, and ``astara-local up`` returns while the
daemon must keep running); then member ``i`` runs with ``orchestrator-<i>/orchestrator.ini``
(its own state directory, log and API port ``44250 + i``), all in the management namespace,
each tracked by PID as ``orchestrator-<i>``. See docs/clustering.md.
"""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path

from astara.linux.processes import ProcessTracker, TrackedProcess
from astara_localcloud.coordination_service import BACKENDS, tooz_url
from astara_localcloud.services import free_port

ZOOKEEPER_SH = "/usr/share/zookeeper/bin/zkServer.sh"
GROUP = "astara.local"
HEARTBEAT_INTERVAL = 1.0


def coordination_argv(backend: str, directory: Path, port: int) -> tuple[list[str], dict[str, str]]:
    """The daemon's command line (in the foreground) and environment."""
    directory.mkdir(parents=True, exist_ok=True)
    if backend == "zookeeper":
        cfg = directory / "zoo.cfg"
        cfg.write_text(
            f"dataDir={directory}/data\nclientPort={port}\nclientPortAddress=127.0.0.1\n"
            "admin.enableServer=false\ntickTime=500\nminSessionTimeout=1000\n"
        )
        env = {"ZOOCFGDIR": str(directory), "ZOO_LOG_DIR": str(directory)}
        return ["bash", ZOOKEEPER_SH, "start-foreground", str(cfg)], env
    if backend == "etcd":
        peer = f"http://127.0.0.1:{free_port()}"
        client = f"http://127.0.0.1:{port}"
        return [
            "etcd", "--name", "kit", "--data-dir", str(directory / "data"),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"kit={peer}",
        ], {}  # fmt: skip
    if backend == "redis":
        return [
            "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
            "--save", "", "--appendonly", "no",
        ], {}  # fmt: skip
    raise ValueError(f"unknown coordination backend {backend!r} (one of {', '.join(BACKENDS)})")


def wait_port(port: int, alive: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if not alive():
            raise RuntimeError(f"the coordination daemon exited before listening on {port}")
        time.sleep(0.2)
    raise RuntimeError(f"the coordination daemon did not listen on 127.0.0.1:{port}")


class KitCoordination:
    """The kit's coordination daemon (one backend), tracked by PID as ``coordination``."""

    NAME = "coordination"

    def __init__(self, state_dir: Path, tracker: ProcessTracker) -> None:
        self.dir = state_dir / "coordination"
        self.tracker = tracker

    def start(self, backend: str) -> str:
        """Start the daemon (once); the members' ``[coordination] url`` (on 127.0.0.1: the
        kit's relay shows :attr:`port` in the management namespace)."""
        url_file = self.dir / "url"
        if self.tracker.get(self.NAME) is not None and url_file.exists():
            return url_file.read_text().strip()
        shutil.rmtree(self.dir, ignore_errors=True)
        port = free_port()
        argv, env = coordination_argv(backend, self.dir, port)
        proc = self.tracker.start(self.NAME, argv, env=env, log_path=self.dir / "daemon.log")
        wait_port(port, proc.alive)
        url = tooz_url(backend, port)
        url_file.write_text(url + "\n")
        return url

    @property
    def port(self) -> int:
        """The daemon's port (from the URL written at start)."""
        url = (self.dir / "url").read_text().strip()
        return int(url.split("://", 1)[1].split("?")[0].rsplit(":", 1)[1])

    def stop(self) -> bool:
        return self.tracker.stop(self.NAME)

    def restart(self, backend: str) -> None:
        """Start the stopped daemon again on the same port and data (an outage's end)."""
        port = self.port
        argv, env = coordination_argv(backend, self.dir, port)
        proc = self.tracker.start(self.NAME, argv, env=env, log_path=self.dir / "daemon.log")
        wait_port(port, proc.alive)


def member_name(index: int) -> str:
    return f"orchestrator-{index}"


def member_ini(text: str, base_dir: Path, member_dir: Path, index: int, url: str) -> str:
    """Member ``index``'s config from the kit's single-orchestrator ``text``: its own state
    directory, log, API port and host name (``<host>-<i>``: its own notification queue), and
    the ``[coordination]`` section."""
    port_line = next(line for line in text.splitlines() if line.startswith("api_port = "))
    port = int(port_line.split("=")[1]) + index
    text = text.replace(str(base_dir), str(member_dir)).replace(port_line, f"api_port = {port}")
    # Its own host name: its own notification pool queue (every member gets every event).
    host_line = next(line for line in text.splitlines() if line.startswith("host = "))
    text = text.replace(host_line, f"{host_line}-{index}")
    return text + (
        f"\n[coordination]\nenabled = true\nurl = {url}\ngroup_id = {GROUP}\n"
        f"heartbeat_interval = {HEARTBEAT_INTERVAL}\n"
    )


def member_port(text: str) -> int:
    line = next(line for line in text.splitlines() if line.startswith("api_port = "))
    return int(line.split("=")[1])


def start_members(
    run: Callable[[str, Path], TrackedProcess],
    base_ini: Path,
    count: int,
    url: str,
) -> dict[str, int]:
    """``count`` members from ``base_ini`` (``run(name, ini)`` starts one); name -> API port."""
    base_dir = base_ini.parent
    text = base_ini.read_text()
    ports = {}
    for index in range(count):
        member_dir = base_dir.with_name(member_name(index))
        member_dir.mkdir(parents=True, exist_ok=True)
        ini = member_dir / "orchestrator.ini"
        ini.write_text(member_ini(text, base_dir, member_dir, index, url))
        run(member_name(index), ini)
        ports[member_name(index)] = member_port(ini.read_text())
    return ports

"""Nova, Placement and Glance (Debian's packages) in a state directory: SQLite, loopback.

The services run on the system Python (``/usr/bin/python3``), apart from the project's
virtualenv, like :mod:`astara_localcloud.neutron_server`. Nova boots servers with the fake virt
driver (no hypervisor); its ports live in the real neutron-server given by ``neutron_endpoint``.

Auth without Keystone: Nova keeps ``auth_strategy = keystone`` but its paste pipelines have no
``authtoken`` filter, so it trusts the ``X-User-Id``/``X-Project-Id``/``X-Roles`` headers its
callers send (with any ``X-Auth-Token``): see :func:`trusted_headers`. Nova reaches Placement
(noauth2) and Neutron (noauth) with the ``admin_token`` auth plugin; Glance runs unauthenticated.

The databases (nova_api, cell0, cell1, placement, glance) take tens of seconds to migrate, so a
migrated set is cached per package version and copied for each new cloud; only the cell
mappings, which name the database files and the RabbitMQ URL, are rewritten in the copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from astara.linux.processes import ProcessTracker
from astara.providers.nova_config import trusted_headers
from astara_localcloud.nova_conf import GLANCE_CONF, NOVA_CONF, PLACEMENT_CONF
from astara_localcloud.services import (
    CACHE_DIR,
    SQLITE_LOCK_AT_BEGIN,
    SYSTEM_PYTHON,
    check_command,
    free_port,
    json_request,
    python_service,
    tail_file,
)

NOVA_PACKAGES = ("python3-nova", "placement-api", "glance-api")
DATABASES = ("nova_api", "nova_cell0", "nova", "placement", "glance")
TEMPLATE_FORMAT = "1"  # change to rebuild cached databases made the old way
SERVICES = ("placement", "glance", "nova-api", "nova-conductor", "nova-scheduler", "nova-compute")
SERVICE_PROJECT = "astara-service"
MICROVERSION = "2.90"  # Zed supports up to 2.93

# Harness only (never the product): ml2/openvswitch binds a port only to a host with a live
# "Open vSwitch agent". This stands in for one by sending the agent's report_state RPC to
# neutron-server every few seconds, on Debian's oslo.messaging (system Python).
FAKE_AGENT = """
import datetime, sys, time, uuid
import oslo_messaging as om
from oslo_config import cfg
url, host, interval = sys.argv[1], sys.argv[2], float(sys.argv[3])
physnets = [p for p in (sys.argv[4] if len(sys.argv) > 4 else "").split(",") if p]
transport = om.get_rpc_transport(cfg.CONF, url=url)
target = om.Target(exchange="neutron", topic="q-reports-plugin", version="1.2")
client = om.get_rpc_client(transport, target, timeout=30)
state = {"binary": "neutron-openvswitch-agent", "host": host, "topic": "N/A",
         "agent_type": "Open vSwitch agent", "start_flag": True,
         "configurations": {"bridge_mappings": {p: "br-" + p for p in physnets},
                            "tunnel_types": ["vxlan"],
                            "integration_bridge": "br-int", "datapath_type": "system"}}
context = {"user_id": "astara-harness", "project_id": "astara-harness", "is_admin": True}
while True:
    state["uuid"] = str(uuid.uuid4())
    now = datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%S.%f")
    try:
        client.call(context, "report_state", agent_state={"agent_state": state}, time=now)
        state.pop("start_flag", None)
        print("reported", now, flush=True)
    except Exception as exc:
        print("report failed:", exc, flush=True)
    time.sleep(interval)
"""


def nova_version() -> str:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version} ", *NOVA_PACKAGES], capture_output=True, text=True
    )
    return result.stdout.strip() or "unknown"


def nova_installed() -> bool:
    return all(Path(path).exists() for path in ("/usr/bin/nova-api", "/usr/bin/placement-api"))


class NovaCloud:
    """Placement, Glance, nova-api, -conductor, -scheduler and a fake-driver compute service."""

    def __init__(
        self,
        state_dir: str | Path,
        transport_url: str,
        neutron_endpoint: str,
        tracker: ProcessTracker,
        *,
        host: str = "astara-compute",
        api_port: int | None = None,
        name_prefix: str = "",
        fake_agent_transport_url: str | None = None,
        placement_port: int | None = None,
        glance_port: int | None = None,
        fake_agent_physnets: tuple[str, ...] = (),
    ) -> None:
        """``fake_agent_transport_url``: neutron-server's RabbitMQ URL; when given, a stand-in
        Open vSwitch agent reports for ``host`` so that Neutron binds the servers' ports (on
        flat or VLAN networks of ``fake_agent_physnets`` too).
        """
        self.state_dir = Path(state_dir)
        self.transport_url = transport_url
        self.neutron_endpoint = neutron_endpoint
        self.tracker = tracker
        self.host = host
        self.api_port = api_port or free_port()
        self.placement_port = placement_port or free_port()
        self.glance_port = glance_port or free_port()
        self.name_prefix = name_prefix
        self.fake_agent_transport_url = fake_agent_transport_url
        self.fake_agent_physnets = fake_agent_physnets

    # -- endpoints ---------------------------------------------------------------------------
    @property
    def compute_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/v2.1"

    @property
    def placement_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.placement_port}"

    @property
    def image_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.glance_port}"

    def _process(self, service: str) -> str:
        return f"{self.name_prefix}{service}"

    # -- configuration -----------------------------------------------------------------------
    def write_config(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for sub in ("lock", "instances", "images"):
            (self.state_dir / sub).mkdir(exist_ok=True)
        values = {
            "state_dir": self.state_dir,
            "host": self.host,
            "transport_url": self.transport_url,
            "api_port": self.api_port,
            "glance_port": self.glance_port,
            "glance_endpoint": self.image_endpoint,
            "placement_endpoint": self.placement_endpoint,
            "neutron_endpoint": self.neutron_endpoint,
            **{f"db_url_{db}": self.db_url(db) for db in DATABASES},
        }
        nova_conf = NOVA_CONF.format(**values)
        for service in ("nova-api", "nova-conductor", "nova-scheduler", "nova-compute", "manage"):
            conf = nova_conf.replace("{service}", service)
            (self.state_dir / f"{service}.conf").write_text(conf)
        (self.state_dir / "placement.conf").write_text(PLACEMENT_CONF.format(**values))
        (self.state_dir / "glance-api.conf").write_text(GLANCE_CONF.format(**values))
        # Nova's keystone pipelines without authtoken: trust the caller's identity headers.
        paste = Path("/etc/nova/api-paste.ini").read_text()
        (self.state_dir / "nova-api-paste.ini").write_text(paste.replace(" authtoken ", " "))

    def db_url(self, db: str) -> str:
        """SQLite URL of database ``db``: several services write to one file, so lock waits
        get a generous timeout (the 5 s default fails requests on a busy machine). They take
        the lock when a transaction begins (``SQLITE_LOCK_AT_BEGIN``), so the wait applies.
        """
        return f"sqlite:///{self.state_dir}/{db}.sqlite?timeout=60"

    def _conf(self, service: str) -> list[str]:
        return ["--config-file", str(self.state_dir / f"{service}.conf")]

    # -- databases ---------------------------------------------------------------------------
    def prepare_databases(self) -> None:
        """Copy the cached, migrated databases (building them once per package version)."""
        if (self.state_dir / "nova_api.sqlite").exists():
            return
        key = hashlib.sha1(f"{nova_version()} {TEMPLATE_FORMAT}".encode()).hexdigest()[:12]
        template = CACHE_DIR / f"nova-{key}"
        if not template.exists():
            self._build_template(template)
        for db in DATABASES:
            shutil.copyfile(template / f"{db}.sqlite", self.state_dir / f"{db}.sqlite")
        self._point_cells_here()

    def _build_template(self, template: Path) -> None:
        scratch = self.state_dir / "template"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        manage = [*self._conf("manage")]
        cell0 = self.db_url("nova_cell0")
        check_command(["nova-manage", *manage, "api_db", "sync"], "nova-manage api_db sync")
        check_command(
            ["nova-manage", *manage, "cell_v2", "map_cell0", "--database_connection", cell0],
            "nova-manage cell_v2 map_cell0",
        )
        check_command(
            ["nova-manage", *manage, "cell_v2", "create_cell", "--name", "cell1"],
            "nova-manage cell_v2 create_cell",
        )
        check_command(["nova-manage", *manage, "db", "sync"], "nova-manage db sync")
        check_command(
            ["placement-manage", *self._conf("placement"), "db", "sync"], "placement db sync"
        )
        check_command(
            ["glance-manage", *self._conf("glance-api"), "db_sync"], "glance-manage db_sync"
        )
        for db in DATABASES:
            shutil.move(self.state_dir / f"{db}.sqlite", scratch / f"{db}.sqlite")
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        # Another run may build the same template at the same time: publish atomically.
        try:
            os.rename(scratch, template)
        except OSError:
            shutil.rmtree(scratch, ignore_errors=True)
            if not template.exists():
                raise

    def _point_cells_here(self) -> None:
        """Make the copied cell mappings name this cloud's database files and RabbitMQ."""
        with contextlib.closing(sqlite3.connect(self.state_dir / "nova_api.sqlite")) as db, db:
            db.execute(
                "UPDATE cell_mappings SET database_connection = ? WHERE name = 'cell0'",
                (self.db_url("nova_cell0"),),
            )
            db.execute(
                "UPDATE cell_mappings SET database_connection = ?, transport_url = ? "
                "WHERE name = 'cell1'",
                (self.db_url("nova"), self.transport_url),
            )

    # -- processes ---------------------------------------------------------------------------
    def start(self, timeout: float = 120.0) -> None:
        """Configure, prepare the databases, start every service and wait until compute is up."""
        self.write_config()
        self.prepare_databases()
        start = self.tracker.start
        log = self.state_dir
        start(
            self._process("placement"),
            [
                "placement-api",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.placement_port),
            ],
            log_path=log / "placement.stdout",
            # placement-api's WSGI app reads placement.conf from this directory only.
            env={**os.environ, "OS_PLACEMENT_CONFIG_DIR": str(self.state_dir)},
        )
        start(
            self._process("glance"),
            ["glance-api", *self._conf("glance-api")],
            log_path=log / "glance.stdout",
        )
        for service in ("nova-api", "nova-conductor", "nova-scheduler", "nova-compute"):
            # Debian's nova-compute package pulls libvirt; python3-nova has the service itself.
            # The Nova services share two SQLite files: transactions take the lock at BEGIN.
            module = f"nova.cmd.{service.removeprefix('nova-')}"
            start(
                self._process(service),
                [*python_service(service, module, SQLITE_LOCK_AT_BEGIN), *self._conf(service)],
                log_path=log / f"{service}.stdout",
            )
        if self.fake_agent_transport_url:
            start(
                self._process("fake-ovs-agent"),
                [
                    SYSTEM_PYTHON,
                    "-c",
                    FAKE_AGENT,
                    self.fake_agent_transport_url,
                    self.host,
                    "20",
                    ",".join(self.fake_agent_physnets),
                ],
                log_path=log / "fake-ovs-agent.log",
            )
        deadline = time.monotonic() + timeout
        self._wait(lambda: self.request("GET", "/os-hypervisors") is not None, deadline, "nova-api")
        self._wait(self._compute_registered, deadline, "the compute service")
        check_command(
            ["nova-manage", *self._conf("manage"), "cell_v2", "discover_hosts"], "discover_hosts"
        )
        self._wait(self._hypervisor_visible, deadline, "the fake hypervisor")
        if self.fake_agent_transport_url:
            self._wait(self._agent_alive, deadline, "the stand-in Open vSwitch agent")

    def _compute_registered(self) -> bool:
        services = self.request("GET", "/os-services?binary=nova-compute")["services"]
        return any(s["host"] == self.host and s["state"] == "up" for s in services)

    def _hypervisor_visible(self) -> bool:
        return bool(self.request("GET", "/os-hypervisors")["hypervisors"])

    def _agent_alive(self) -> bool:
        url = f"{self.neutron_endpoint}/v2.0/agents?host={self.host}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            agents = json.load(resp)["agents"]
        return any(agent["alive"] for agent in agents)

    def _services(self) -> list[str]:
        return [*SERVICES, "fake-ovs-agent"] if self.fake_agent_transport_url else list(SERVICES)

    def _wait(self, ready: Any, deadline: float, what: str) -> None:
        last: Exception | None = None
        while time.monotonic() < deadline:
            for service in self._services():
                if self.tracker.get(self._process(service)) is None:
                    raise RuntimeError(
                        f"{service} exited during start-up:\n{self.log_tail(service)}"
                    )
            try:
                if ready():
                    return
            except (OSError, urllib.error.URLError, KeyError) as exc:
                last = exc
            time.sleep(0.5)
        raise RuntimeError(f"{what} not ready in time ({last}):\n{self.log_tail('nova-api')}")

    def stop(self) -> None:
        """Stop every service, all at once (each may take seconds to honour SIGTERM)."""
        names = [self._process(service) for service in self._services()]
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            list(pool.map(self.tracker.stop, names))

    @contextlib.contextmanager
    def paused(self, service: str) -> Iterator[None]:
        """Freeze ``service`` for the block (SIGSTOP to the process group its recorded PID leads,
        so forked API workers too): a hung hypervisor or API, for fault tests.
        """
        with self.tracker.paused(self._process(service)):
            yield

    def running(self) -> bool:
        return all(self.tracker.get(self._process(s)) is not None for s in self._services())

    def log_tail(self, service: str = "nova-compute", lines: int = 40) -> str:
        return tail_file(self.state_dir / f"{service}.log", lines, f"(no {service} log)")

    # -- API ---------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> Any:
        """A raw JSON request to the Nova API as the service project's admin."""
        headers = {
            "OpenStack-API-Version": f"compute {MICROVERSION}",
            **trusted_headers(SERVICE_PROJECT),
        }
        return json_request(
            self.compute_endpoint + path, method, body, headers=headers, timeout=timeout
        )

"""The shared test harness: real RabbitMQ, a real neutron-server, network namespaces.

Tiers are markers given by directory (tests/unit, tests/functional, tests/integration,
tests/e2e, tests/vm: the appliance image under qemu); run one with ``scripts/test.sh -m unit``
(or ``.venv/bin/pytest -m unit``).

Everything the harness creates is recorded under ``RUN_DIR``: processes by PID (with their
start times) and namespaces by name. A run first removes what an interrupted earlier run
recorded, and at the end checks that nothing of its own is left; leftovers fail the run.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from astara.linux import netns
from astara.linux.processes import ProcessTracker, process_start_time
from astara_localcloud import rabbit
from astara_localcloud.cloud_api import NeutronBuilder
from astara_localcloud.neutron_server import NeutronServer
from astara_localcloud.notifications import NotificationTap
from tests.harness import log_digest

RUNS_DIR = Path(os.environ.get("ASTARA_TEST_RUN_DIR", "/run/astara-tests"))
# Each pytest session records what it creates in a directory of its own, named by its PID, so
# that several runs on one host (developers, CI) never clean up each other's resources.
RUN_DIR = RUNS_DIR / f"run-{os.getpid()}"
TIERS = ("unit", "functional", "integration", "e2e", "vm")
ROOT_TIERS = {"functional", "integration", "e2e", "vm"}


# -- tiers -------------------------------------------------------------------------------------
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).parent
    for item in items:
        parts = Path(item.fspath).relative_to(tests_dir).parts
        if parts and parts[0] in TIERS:
            item.add_marker(getattr(pytest.mark, parts[0]))


def pytest_runtest_setup(item: pytest.Item) -> None:
    needs_root = ROOT_TIERS & {m.name for m in item.iter_markers()}
    if needs_root and os.geteuid() != 0:
        pytest.fail(
            f"{item.nodeid} is a {sorted(needs_root)[0]} test and needs root "
            "(namespaces, daemons); run it as root or select '-m unit'",
            pytrace=False,
        )


# -- leftovers ---------------------------------------------------------------------------------
def _recorded_under(run_dir: Path) -> tuple[list[Path], list[Path]]:
    """Every process registry directory and namespace registry file anywhere in ``run_dir``.

    The kits keep theirs deep in their state directories (the kit's own, the netns provider's
    per appliance, the e2e responders'), so a run killed with SIGKILL is cleaned up by the
    next one whatever made them.
    """
    trackers: set[Path] = set()
    registries: list[Path] = []
    for path in sorted(run_dir.rglob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict):
            continue
        if {"pid", "start_time", "argv"} <= record.keys():
            trackers.add(path.parent)
        elif isinstance(record.get("namespaces"), list):
            registries.append(path)
    return sorted(trackers), registries


def _cleanup_recorded(run_dir: Path) -> list[str]:
    """Stop the processes and delete the namespaces recorded in ``run_dir``; return them."""
    found: list[str] = []
    for _round in range(2):  # a dying orchestrator may have booted one more appliance
        trackers, _ = _recorded_under(run_dir)
        stopped = [name for tracker in trackers for name in ProcessTracker(tracker).stop_all()]
        found += stopped
        if not stopped:
            break
    for registry in _recorded_under(run_dir)[1]:
        found += netns.cleanup_registry(registry)
    return found


def _owner_alive(run_dir: Path) -> bool:
    """Is the pytest process that made ``run_dir`` still running?"""
    try:
        pid, start_time = (run_dir / "owner").read_text().split()
    except (FileNotFoundError, ValueError):
        return False
    return process_start_time(int(pid)) == int(start_time)


def _root_namespace_fingerprint() -> dict[str, object]:
    """The host's own links, routes and nftables ruleset: tests must not change them."""
    links = json.loads(netns.run(["ip", "-json", "link", "show"], check=False) or "[]")
    ruleset = netns.run(["nft", "list", "ruleset"], check=False) if shutil.which("nft") else ""
    routes = [
        json.loads(netns.run(["ip", f"-{family}", "-json", "route", "show"], check=False) or "[]")
        for family in (4, 6)
    ]
    return {
        "routes": sorted(json.dumps(r, sort_keys=True) for fam in routes for r in fam),
        "links": sorted(
            (ln["ifname"], ln.get("address", ""), ln.get("operstate", "")) for ln in links
        ),
        "nft": ruleset,
    }


_ROOT_FINGERPRINT: dict[str, object] = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    _ROOT_FINGERPRINT.update(_root_namespace_fingerprint())
    if not os.access(RUNS_DIR.parent, os.W_OK):
        return  # not root: only unit tests can run, and they create nothing
    for run_dir in sorted(RUNS_DIR.glob("run-*")):
        if run_dir != RUN_DIR and not _owner_alive(run_dir):
            found = _cleanup_recorded(run_dir)
            shutil.rmtree(run_dir, ignore_errors=True)
            if found:
                print(f"\nharness: removed leftovers of an interrupted run: {found}")
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    (RUN_DIR / "owner").write_text(f"{os.getpid()} {process_start_time(os.getpid())}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    now = _root_namespace_fingerprint()
    for key, before in _ROOT_FINGERPRINT.items():
        if now[key] != before:
            print(
                f"\nharness: THE HOST'S ROOT NAMESPACE CHANGED ({key}):\n{before}\n->\n{now[key]}"
            )
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if not RUN_DIR.exists():
        return
    found = _cleanup_recorded(RUN_DIR)
    shutil.rmtree(RUN_DIR, ignore_errors=True)
    if found:
        print(f"\nharness: LEFT BEHIND by this run (now removed): {found}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# -- processes ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def process_tracker() -> Iterator[ProcessTracker]:
    """Every process a test starts goes through this tracker, and is stopped by PID."""
    tracker = ProcessTracker(RUN_DIR / "pids")
    yield tracker
    tracker.stop_all()


# -- namespaces --------------------------------------------------------------------------------
@pytest.fixture
def topology() -> Iterator[netns.Topology]:
    """A fresh set of namespaces (bridges and veths live inside them), removed after the test."""
    prefix = f"at{uuid.uuid4().hex[:6]}"
    topo = netns.Topology(prefix, registry=RUN_DIR / "topologies" / f"{prefix}.json")
    try:
        yield topo
    finally:
        topo.destroy()


# -- RabbitMQ ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def rabbitmq() -> None:
    rabbit.ensure_running()


@pytest.fixture
def rabbit_vhost(rabbitmq: None) -> Iterator[str]:
    """A virtual host of its own for one test; yields its name. Deleted (with its queues) after."""
    vhost = f"astara-test-{uuid.uuid4().hex[:8]}"
    rabbit.add_vhost(vhost)
    try:
        yield vhost
    finally:
        rabbit.delete_vhost(vhost)


# -- neutron-server ----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def neutron(rabbitmq: None, process_tracker: ProcessTracker) -> Iterator[NeutronServer]:
    """One real neutron-server for the test session, on its own RabbitMQ virtual host."""
    vhost = f"astara-test-neutron-{uuid.uuid4().hex[:8]}"
    url = rabbit.add_vhost(vhost)
    state_dir = RUN_DIR / "state" / vhost
    server = NeutronServer(state_dir, url, process_tracker)
    server.vhost = vhost  # type: ignore[attr-defined]
    try:
        server.start()
        yield server
    finally:
        server.stop()
        rabbit.delete_vhost(vhost)
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture
def neutron_api(neutron: NeutronServer) -> NeutronBuilder:
    return NeutronBuilder(neutron.endpoint)


@pytest.fixture
def notifications(neutron: NeutronServer) -> Iterator[NotificationTap]:
    """Notifications neutron-server publishes from now on, in a queue of this test's own."""
    tap = NotificationTap(rabbit.amqp_url(neutron.vhost))  # type: ignore[attr-defined]
    try:
        yield tap
    finally:
        tap.close()


# -- service logs of failing tests --------------------------------------------------------------
_LOG_SIZES = pytest.StashKey[dict[Path, int]]()
_FAILED_DIGESTS: list[tuple[str, list[str]]] = []


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """Where the service logs stand as a test begins; unit tests start no services, so their
    calls are not slowed by walking the run directory."""
    if RUN_DIR.exists() and ROOT_TIERS & {m.name for m in item.iter_markers()}:
        item.stash[_LOG_SIZES] = log_digest.snapshot(RUN_DIR)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Attach to a failing test the neutron-server log tail (when it used the session server)
    and the ERROR lines every service under the run directory logged while it ran (read now:
    the fixtures that end after this remove their state directories)."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    if "neutron" in getattr(item, "fixturenames", ()):
        server = item.funcargs.get("neutron") if hasattr(item, "funcargs") else None
        if isinstance(server, NeutronServer):
            report.sections.append(("neutron-server log (tail)", server.log_tail()))
    before = item.stash.get(_LOG_SIZES, None)
    if before is not None and RUN_DIR.exists():
        digest = log_digest.errors_since(RUN_DIR, before)
        if digest:
            report.sections.append(("service log errors during the test", "\n".join(digest)))
            _FAILED_DIGESTS.append((f"{item.nodeid} ({report.when})", digest))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The failing tests' service errors again, just before the short summary: the part of a
    long CI log that is shown when the middle is cut."""
    if not _FAILED_DIGESTS:
        return
    terminalreporter.section("service log errors of failing tests", sep="=")
    for nodeid, digest in _FAILED_DIGESTS:
        terminalreporter.write_line(nodeid)
        for line in digest[:40]:
            terminalreporter.write_line(f"  {line}")

"""The harness itself, proven against a real neutron-server and RabbitMQ."""

from __future__ import annotations


def test_router_and_interface_notifications(neutron_api, notifications):
    net = neutron_api.network("harness-net", "tenant-h")
    subnet = neutron_api.subnet(net, "10.77.0.0/24", "tenant-h")
    router = neutron_api.router("harness-router", "tenant-h")

    created = notifications.event("router.create.end")
    assert created["payload"]["router"]["id"] == router.id
    assert created["priority"] == "INFO"
    assert created["publisher_id"].startswith("network.")

    iface = neutron_api.add_interface(router, subnet)
    # Neutron emits router.interface.create with no ".end", keyed "router_interface" (DESIGN §3).
    note = notifications.event("router.interface.create")
    assert note["payload"]["router_interface"]["id"] == router.id
    assert note["payload"]["router_interface"]["port_id"] == iface["port_id"]
    assert note["payload"]["router_interface"]["subnet_id"] == subnet.id
    assert note["_context_project_id"]

    neutron_api.remove_interface(router, subnet)
    note = notifications.event("router.interface.delete")
    assert note["payload"]["router_interface"]["id"] == router.id


def test_tap_sees_only_its_own_messages(neutron_api, notifications):
    """A fresh tap starts empty: nothing from the previous test leaks in."""
    router = neutron_api.router("second-router", "tenant-h")
    note = notifications.event("router.create.end")
    assert note["payload"]["router"]["id"] == router.id
    creates = [n for n in notifications.seen if n["event_type"] == "router.create.end"]
    assert [n["payload"]["router"]["id"] for n in creates] == [router.id]


def test_the_launcher_gives_neutron_one_pooled_sqlite_connection(tmp_path):
    """Debian's oslo.db on SQLAlchemy 1.4 makes a NullPool for a SQLite file (a connection per
    session); the kit's launcher patch makes it the QueuePool of one that neutron.conf asks for."""
    import subprocess

    from astara_localcloud.neutron_server import ONE_POOLED_CONNECTION as patch
    from astara_localcloud.services import SYSTEM_PYTHON

    probe = (
        "from oslo_db.sqlalchemy import engines\n"
        f"e = engines.create_engine('sqlite:///{tmp_path}/db.sqlite?check_same_thread=false',"
        " max_pool_size=1, max_overflow=0, pool_timeout=5)\n"
        "p = e.pool\n"
        "size, overflow = getattr(p, 'size', lambda: ''), getattr(p, '_max_overflow', '')\n"
        "print(type(p).__name__, size(), overflow)\n"
    )
    for code, expected in ((probe, "NullPool"), (patch + probe, "QueuePool 1 0")):
        out = subprocess.run([SYSTEM_PYTHON, "-c", code], capture_output=True, text=True,
                             timeout=60, check=False)  # fmt: skip
        assert out.stdout.strip().startswith(expected), out.stderr[-2000:]


_COMMITTER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
db.execute("CREATE TABLE IF NOT EXISTS astara_test_probe (k INTEGER PRIMARY KEY, v INTEGER)")
n = 0
while True:
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT OR REPLACE INTO astara_test_probe VALUES (1, ?)", (n,))
    db.execute("COMMIT")
    n += 1
    time.sleep(0.02)
"""


def test_writes_succeed_while_another_process_commits(neutron, neutron_api, process_tracker):
    """neutron-server is several processes on one SQLite file (API, RPC worker, services
    worker). Another process committing every 20 ms -- as the RPC worker does with agents'
    heartbeats -- must not turn API writes into 500s ("database is locked"): the launcher's
    BEGIN IMMEDIATE makes transactions wait for the write lock instead of failing on it."""
    import sqlite3
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    from astara_localcloud.services import SYSTEM_PYTHON

    tenant = f"tenant-{uuid.uuid4().hex[:6]}"
    name = f"committer-{uuid.uuid4().hex[:6]}"
    process_tracker.start(name, [SYSTEM_PYTHON, "-c", _COMMITTER, str(neutron.db_path)])

    def network_life(i: int) -> None:
        for k in range(3):
            net = neutron_api.network(f"locked-{i}-{k}", tenant)
            neutron_api.subnet(net, f"10.{90 + i}.{k}.0/24", tenant)
            neutron_api.router(f"locked-{i}-{k}", tenant)
            neutron_api.net.delete_network(net)

    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(network_life, range(4)))  # re-raises the first 500
    finally:
        process_tracker.stop(name)
        with sqlite3.connect(neutron.db_path, timeout=60) as db:
            db.execute("DROP TABLE IF EXISTS astara_test_probe")

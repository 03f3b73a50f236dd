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

    from astara.localcloud.neutron_server import _LAUNCH
    from astara.localcloud.services import SYSTEM_PYTHON

    patch = _LAUNCH.split("from neutron")[0]  # the pool patch, without starting the server
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

"""The Neutron adapter's own logic: connecting from options, the lookup caches, status reporting.

Calls that reach Neutron are tested against the real neutron-server in tests/integration.
"""

from __future__ import annotations

import threading
import time

import pytest
from oslo_config import cfg

from astara.core.interfaces import LookupUnavailable
from astara.core.retry import Backoff
from astara.neutron import client as neutron_client
from astara.neutron.client import KEYSTONE_GROUP, NeutronUnavailable, connect, list_opts
from astara.neutron.lookup import CachedRouterLookup
from astara.neutron.models import Router
from astara.neutron.status import BackgroundStatusReporter, StatusReporter
from astara.orchestrator import config


def make_conf(**overrides: str) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    config.register_opts(conf)
    neutron_client.register_opts(conf)
    conf([], project="astara-test", default_config_files=[], default_config_dirs=[])
    for name, value in overrides.items():
        group, _, opt = name.rpartition("__")
        conf.set_override(opt, value, group=group or None)
    return conf


# -- connecting --------------------------------------------------------------------------------
def test_noauth_needs_an_endpoint():
    with pytest.raises(NeutronUnavailable, match="neutron_endpoint"):
        connect(make_conf())


def test_noauth_connection_uses_the_endpoint():
    conn = connect(make_conf(neutron_endpoint="http://127.0.0.1:9696"))
    assert conn.config.config["network_endpoint_override"] == "http://127.0.0.1:9696"


def test_keystone_options_build_a_password_session():
    conf = make_conf(
        keystone_authtoken__auth_type="password",
        neutron_endpoint="http://127.0.0.1:9696",
    )
    conf.register_opts(
        [o for o in list_opts()[0][1] if o.dest not in conf[KEYSTONE_GROUP]], KEYSTONE_GROUP
    )
    conf.set_override("auth_url", "http://127.0.0.1:5000/v3", group=KEYSTONE_GROUP)
    conf.set_override("username", "astara", group=KEYSTONE_GROUP)
    conf.set_override("password", "secret", group=KEYSTONE_GROUP)
    conn = connect(conf)
    assert conn.session.auth.auth_url == "http://127.0.0.1:5000/v3"


def test_list_opts_has_session_and_password_options():
    [(group, opts)] = list_opts()
    names = {o.dest for o in opts}
    assert group == "keystone_authtoken"
    assert {"auth_type", "auth_url", "username", "password", "cafile", "timeout"} <= names


# -- the lookup --------------------------------------------------------------------------------
class FakeClient:
    def __init__(self) -> None:
        self.routers = {"r-1": Router("r-1", "t-1"), "r-2": Router("r-2", "t-2")}
        self.on_network = {"n-1": {"r-1", "r-2"}}
        self.calls: list[str] = []
        self.down = False
        self.tags: list[str] = []
        self.extension_aliases: frozenset[str] = frozenset()
        self.puts: list[tuple[str, dict]] = []

    def get_router(self, router_id: str) -> Router | None:
        self.calls.append(f"router {router_id}")
        if self.down:
            raise NeutronUnavailable("connection refused")
        router = self.routers.get(router_id)
        if router is None:
            return None
        return Router(router.id, router.tenant_id, tags=tuple(self.tags))

    def routers_on_network(self, network_id: str, *, gateways: bool = False) -> set[str]:
        self.calls.append(f"network {network_id}" + (" +gateways" if gateways else ""))
        if self.down:
            raise NeutronUnavailable("connection refused")
        return set(self.on_network.get(network_id, ()))

    def add_router_tag(self, router_id: str, tag: str) -> bool:
        self.calls.append(f"tag {router_id}")
        if router_id not in self.routers:
            return False
        self.tags.append(tag)
        return True

    def remove_router_tag(self, router_id: str, tag: str) -> None:
        self.tags.remove(tag)

    def extensions(self) -> frozenset[str]:
        return self.extension_aliases

    def put(self, path: str, body: dict) -> None:
        self.puts.append((path, body))


def test_lookup_caches_tenants_and_networks():
    client = FakeClient()
    lookup = CachedRouterLookup(client, network_ttl=60)  # type: ignore[arg-type]
    first = lookup.routers_on_network("n-1")
    assert [(r.id, r.tenant_id) for r in first] == [("r-1", "t-1"), ("r-2", "t-2")]
    assert lookup.routers_on_network("n-1") == first
    assert lookup.router_tenant("r-1") == "t-1"
    assert client.calls == ["network n-1", "router r-1", "router r-2"]


def test_answers_with_and_without_gateways_are_kept_apart():
    client = FakeClient()
    lookup = CachedRouterLookup(client, network_ttl=60)  # type: ignore[arg-type]
    lookup.routers_on_network("n-1")
    lookup.routers_on_network("n-1", gateways=True)
    lookup.routers_on_network("n-1", gateways=True)
    assert [c for c in client.calls if c.startswith("network")] == [
        "network n-1",
        "network n-1 +gateways",
    ]


def test_forgetting_gateways_keeps_interface_answers():
    client = FakeClient()
    lookup = CachedRouterLookup(client, network_ttl=60)  # type: ignore[arg-type]
    lookup.routers_on_network("n-1")
    lookup.routers_on_network("n-1", gateways=True)
    lookup.forget_gateways()
    lookup.routers_on_network("n-1")
    lookup.routers_on_network("n-1", gateways=True)
    assert [c for c in client.calls if c.startswith("network")] == [
        "network n-1",
        "network n-1 +gateways",
        "network n-1 +gateways",
    ]


def test_forgetting_a_network_asks_again():
    client = FakeClient()
    lookup = CachedRouterLookup(client, network_ttl=60)  # type: ignore[arg-type]
    lookup.routers_on_network("n-1")
    client.on_network["n-1"] = {"r-1"}
    lookup.forget_network("n-1")
    assert [r.id for r in lookup.routers_on_network("n-1")] == ["r-1"]


def test_expired_network_answers_are_refreshed():
    client = FakeClient()
    lookup = CachedRouterLookup(client, network_ttl=0)  # type: ignore[arg-type]
    lookup.routers_on_network("n-1")
    lookup.routers_on_network("n-1")
    assert client.calls.count("network n-1") == 2


def test_unknown_router_and_neutron_down():
    client = FakeClient()
    lookup = CachedRouterLookup(client, max_routers=1)  # type: ignore[arg-type]
    assert lookup.router_tenant("nope") is None
    assert lookup.router_tenant("r-1") == "t-1"
    client.down = True
    assert lookup.router_tenant("r-1") == "t-1"  # cached
    with pytest.raises(LookupUnavailable):
        lookup.router_tenant("r-2")
    with pytest.raises(LookupUnavailable):
        lookup.routers_on_network("n-1")


# -- status ------------------------------------------------------------------------------------
def test_status_tag_replaces_the_previous_one_only():
    client = FakeClient()
    client.tags = ["keep-me", "astara-status:BUILD"]
    assert StatusReporter(client).report("r-1", "active")  # type: ignore[arg-type]
    assert client.tags == ["keep-me", "astara-status:ACTIVE"]
    assert client.puts == []


def test_a_reason_is_a_tag_of_its_own_until_a_status_without_one():
    client = FakeClient()
    client.tags = ["keep-me", "astara-status:BUILD"]
    reporter = StatusReporter(client)  # type: ignore[arg-type]
    assert reporter.report("r-1", "ERROR", "distributed-unsupported")
    assert sorted(client.tags) == [
        "astara-reason:distributed-unsupported", "astara-status:ERROR", "keep-me"]  # fmt: skip
    assert reporter.report("r-1", "ACTIVE")
    assert client.tags == ["keep-me", "astara-status:ACTIVE"]


def test_status_extension_is_used_when_loaded():
    client = FakeClient()
    client.extension_aliases = frozenset({"dhrouterstatus", "router"})
    StatusReporter(client).report("r-1", "ERROR")  # type: ignore[arg-type]
    assert client.puts == [("/dhrouterstatus/r-1", {"routerstatus": {"status": "ERROR"}})]


def test_the_router_is_read_for_its_tags_once_then_only_written():
    client = FakeClient()
    client.tags = ["keep-me", "astara-status:BUILD"]
    reporter = StatusReporter(client)  # type: ignore[arg-type]
    for status in ("BUILD", "ACTIVE", "DOWN", "ACTIVE"):
        assert reporter.report("r-1", status)
    assert client.tags == ["keep-me", "astara-status:ACTIVE"]
    assert [c for c in client.calls if c.startswith("router")] == ["router r-1"]


def test_a_router_deleted_after_its_tags_were_read_is_forgotten():
    client = FakeClient()
    reporter = StatusReporter(client)  # type: ignore[arg-type]
    assert reporter.report("r-2", "BUILD")
    del client.routers["r-2"]
    assert not reporter.report("r-2", "ACTIVE")  # the tag write finds it gone
    assert not reporter.report("r-2", "ACTIVE")  # read again: gone
    assert [c for c in client.calls if c.startswith("router")] == ["router r-2", "router r-2"]


def test_status_of_a_gone_router_is_not_an_error():
    client = FakeClient()
    assert not StatusReporter(client).report("gone", "DOWN")  # type: ignore[arg-type]
    assert client.tags == []


class GatedReporter:
    """A StatusReporter stand-in whose reports wait for a gate and can fail."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.reported: list[tuple[str, str]] = []
        self.failures = 0

    def report(self, router_id: str, status: str, reason: str = "") -> bool:
        self.gate.wait(10)
        if self.failures:
            self.failures -= 1
            raise NeutronUnavailable("connection refused")
        self.reported.append((router_id, status))
        return True


def test_background_reports_do_not_block_and_keep_the_newest_status():
    inner = GatedReporter()
    reporter = BackgroundStatusReporter(inner)  # type: ignore[arg-type]
    reporter.report("r-1", "BUILD")
    deadline = time.monotonic() + 10
    while reporter.pending() and time.monotonic() < deadline:  # the thread takes it, and
        time.sleep(0.01)  # waits at the gate
    reporter.report("r-1", "ACTIVE")
    reporter.report("r-2", "DOWN")
    reporter.report("r-1", "ERROR")  # replaces r-1's pending ACTIVE
    assert reporter.pending() == {"r-2": "DOWN", "r-1": "ERROR"}
    assert not reporter.flush(timeout=0.2)  # nothing could be written yet
    inner.gate.set()
    assert reporter.flush(timeout=10)
    assert inner.reported == [("r-1", "BUILD"), ("r-2", "DOWN"), ("r-1", "ERROR")]


def test_background_report_is_retried_while_neutron_is_down():
    inner = GatedReporter()
    inner.gate.set()
    inner.failures = 2
    backoff = Backoff(base=0.01, cap=0.02)
    reporter = BackgroundStatusReporter(inner, backoff)  # type: ignore[arg-type]
    reporter.report("r-1", "ACTIVE")
    assert reporter.flush(timeout=10)
    assert inner.reported == [("r-1", "ACTIVE")]

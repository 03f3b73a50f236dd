"""The Nova provider's pure parts: user data, build-rate limit, port order in metadata."""

from __future__ import annotations

import base64
from types import SimpleNamespace

import pytest
import requests
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from openstack.exceptions import HttpException

from astara.core.events import Resource
from astara.core.interfaces import PortRole, PortSpec, ProviderError
from astara.core.retry import Backoff
from astara.providers import nova_userdata
from astara.providers.nova import NovaProvider, _epoch, server_name
from astara.providers.nova_calls import idempotent
from astara.providers.nova_config import NovaSettings, read_public_key, trusted_headers
from astara.providers.nova_ports import PortBook
from astara.providers.nova_ratelimit import BuildRateLimiter


def spec(port_id: str, role: PortRole = PortRole.SERVICE) -> PortSpec:
    return PortSpec(port_id, "net", "fa:16:3e:00:00:01", ("10.0.0.5/24",), role)


# -- user data ---------------------------------------------------------------------------------
def test_cloud_config_runs_configure_management_and_installs_the_key() -> None:
    text = nova_userdata.cloud_config(
        "fa:16:3e:11:22:33",
        "fdca:3ba5:a17a:acda::5/64",
        ssh_public_key="ssh-ed25519 AAAA op@host\n",
        hostname="ak-router-r1",
    )
    assert text.startswith("#cloud-config\n")
    doc = yaml.safe_load(text)
    assert doc["bootcmd"] == [
        [
            "astara-configure-management",
            "--state-dir",
            "/var/lib/astara",
            "fa:16:3e:11:22:33",
            "fdca:3ba5:a17a:acda::5/64",
        ]
    ]
    (user,) = doc["users"]
    assert user["name"] == "astara"
    assert user["ssh_authorized_keys"] == ["ssh-ed25519 AAAA op@host"]
    assert user["lock_passwd"] is True
    assert doc["hostname"] == "ak-router-r1"


def test_cloud_config_without_a_key_creates_no_user() -> None:
    doc = yaml.safe_load(nova_userdata.cloud_config("fa:16:3e:00:00:01", "fdca::5/64"))
    assert "users" not in doc


@settings(deadline=None)  # a shared, busy CI machine
@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=200))
def test_any_key_text_stays_valid_yaml(key: str) -> None:
    """Public keys are printable ASCII; quotes, colons, hashes and the like must survive."""
    doc = yaml.safe_load(nova_userdata.cloud_config("m", "a/64", ssh_public_key=key))
    if key.strip():
        assert doc["users"][0]["ssh_authorized_keys"] == [key.strip()]


def test_encoded_user_data_round_trips_and_is_bounded() -> None:
    text = nova_userdata.cloud_config("fa:16:3e:00:00:01", "fdca::5/64")
    assert base64.b64decode(nova_userdata.encode(text)).decode() == text
    with pytest.raises(ValueError, match="65535"):
        nova_userdata.encode("x" * 60000)


def test_public_key_is_read_from_its_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "astara.pub"
    path.write_text("ssh-rsa AAAA op\n")
    assert read_public_key(str(path)) == "ssh-rsa AAAA op"
    assert read_public_key(str(tmp_path / "missing.pub")) is None
    assert read_public_key(None) is None


# -- build-rate limit --------------------------------------------------------------------------
class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_rate_limit_allows_a_burst_then_spaces_boots() -> None:
    t = FakeTime()
    limiter = BuildRateLimiter(30, burst=2, clock=t.clock, sleep=t.sleep)  # one per 2 s
    assert [limiter.acquire() for _ in range(2)] == [0.0, 0.0]
    assert limiter.acquire() == pytest.approx(2.0)
    assert limiter.acquire() == pytest.approx(2.0)
    t.now += 10  # idle time refills the bucket, but never above the burst
    assert [limiter.acquire() for _ in range(2)] == [0.0, 0.0]
    assert limiter.acquire() == pytest.approx(2.0)


def test_rate_limit_of_zero_never_waits() -> None:
    t = FakeTime()
    limiter = BuildRateLimiter(0, clock=t.clock, sleep=t.sleep)
    assert [limiter.acquire() for _ in range(100)] == [0.0] * 100
    assert t.slept == []


@settings(deadline=None)
@given(st.floats(min_value=1, max_value=600), st.integers(min_value=1, max_value=10))
def test_rate_limit_never_exceeds_its_rate(per_minute: float, burst: int) -> None:
    t = FakeTime()
    limiter = BuildRateLimiter(per_minute, burst=burst, clock=t.clock, sleep=t.sleep)
    boots = 50
    for _ in range(boots):
        limiter.acquire()
    # After the burst, boots come no faster than the rate.
    assert t.now >= (boots - burst) * 60.0 / per_minute - 1e-6


# -- names, times, headers ---------------------------------------------------------------------
def test_server_name_carries_kind_and_id() -> None:
    assert server_name(Resource("r-1", "t", "router")) == "ak-router-r-1"


def test_nova_timestamps_are_utc() -> None:
    assert _epoch("1970-01-01T00:01:40Z") == 100.0
    assert _epoch("2026-11-26T06:00:00.000000") == _epoch("2026-11-26T06:00:00Z")
    assert _epoch(None) is None


def test_trusted_headers_name_the_project() -> None:
    headers = trusted_headers("p-1")
    assert headers["X-Project-Id"] == "p-1"
    assert "admin" in headers["X-Roles"].split(",")


# -- port order in server metadata -------------------------------------------------------------
def test_ports_are_recorded_in_order_with_roles() -> None:
    ports = [spec("m", PortRole.MANAGEMENT), spec("a"), spec("b")]
    meta = PortBook.metadata(ports)
    assert meta == {
        "astara_port_0": "management:m",
        "astara_port_1": "service:a",
        "astara_port_2": "service:b",
    }
    assert PortBook.ids(meta) == ["m", "a", "b"]


def test_a_plugged_port_goes_after_the_others_once() -> None:
    meta = {"astara_port_0": "management:m", "astara_port_7": "service:a", "other": "x"}
    assert PortBook.add(meta, spec("c")) == {"astara_port_8": "service:c"}
    assert PortBook.add(meta, spec("a")) == {}
    assert PortBook.key_of(meta, "a") == "astara_port_7"
    assert PortBook.key_of(meta, "zz") is None


def test_order_is_numeric_not_lexical() -> None:
    meta = {f"astara_port_{n}": f"service:p{n}" for n in (10, 2, 1, 0)}
    assert PortBook.ids(meta) == ["p0", "p1", "p2", "p10"]


# -- transient API errors ----------------------------------------------------------------------
def _failing(statuses: list[int], result: str = "ok"):  # type: ignore[no-untyped-def]
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= len(statuses):
            response = requests.Response()  # as the SDK raises it (http_status= is deprecated)
            response.status_code = statuses[len(calls) - 1]
            raise HttpException(message="boom", response=response)
        return result

    return call, calls


def test_idempotent_calls_are_sent_again_after_a_transient_error() -> None:
    call, calls = _failing([500, 503])
    pauses: list[float] = []
    backoff = Backoff(base=1, cap=10)
    assert idempotent("GET thing", call, attempts=3, backoff=backoff, sleep=pauses.append) == "ok"
    assert len(calls) == 3
    assert 0.5 <= pauses[0] <= 1 and 1 <= pauses[1] <= 2  # exponential, jittered


def test_client_errors_and_exhausted_retries_raise_provider_error() -> None:
    call, calls = _failing([404])
    with pytest.raises(ProviderError, match="GET thing"):
        idempotent("GET thing", call, sleep=lambda _s: None)
    assert len(calls) == 1  # a 404 is an answer, not a hiccup
    call, calls = _failing([500, 500, 500])
    with pytest.raises(ProviderError):
        idempotent("GET thing", call, attempts=3, sleep=lambda _s: None)
    assert len(calls) == 3


# -- stop: a delete that fails inside Nova -------------------------------------------------------
class FailedDeleteNova:
    """Nova whose first delete of a server fails (ERROR, no task) and whose second works.

    A double for a fault the kit cannot cause on demand: nova-compute erring while it unbinds
    the server's ports from Neutron.
    """

    def __init__(self) -> None:
        self.deletes: list[str] = []
        self.server = SimpleNamespace(
            id="s-1", name="ak-router-r-1", status="ACTIVE", task_state=None, fault=None,
            created_at="2026-11-26T06:00:00Z", metadata={},
        )  # fmt: skip

    def servers(self, name: str) -> list[SimpleNamespace]:
        return [self.server]

    def delete_server(self, server_id: str, ignore_missing: bool) -> None:
        self.deletes.append(server_id)
        if len(self.deletes) == 1:
            self.server.status, self.server.fault = "ERROR", {"message": "Neutron said 500"}
        else:
            self.server.status = "DELETED"

    def find_server(self, server_id: str, ignore_missing: bool) -> SimpleNamespace | None:
        return None if self.server.status == "DELETED" else self.server


def _provider(nova: object, t: FakeTime, **settings: float) -> NovaProvider:
    return NovaProvider(
        SimpleNamespace(compute=nova),  # type: ignore[arg-type]
        SimpleNamespace(network=None),  # type: ignore[arg-type]
        NovaSettings(**settings),  # type: ignore[arg-type]
        clock=t.clock,
        sleep=t.sleep,
    )


def test_stop_deletes_again_a_server_whose_delete_failed_in_nova(caplog) -> None:  # type: ignore[no-untyped-def]
    nova, t = FailedDeleteNova(), FakeTime()
    _provider(nova, t).stop(Resource("r-1", "t", "router"))
    assert nova.deletes == ["s-1", "s-1"]
    assert (
        "Nova failed to delete server s-1 (status ERROR, fault 'Neutron said 500')" in caplog.text
    )


def test_stop_times_out_saying_what_nova_shows() -> None:
    nova, t = FailedDeleteNova(), FakeTime()
    nova.delete_server = lambda server_id, ignore_missing: setattr(  # type: ignore[method-assign]
        nova.server, "task_state", "deleting"
    )
    with pytest.raises(ProviderError, match=r"not deleted after 5s \(timeout; status ACTIVE, "
                       r"task deleting\)"):  # fmt: skip
        _provider(nova, t, delete_timeout=5).stop(Resource("r-1", "t", "router"))


def test_the_appliances_certificate_rides_in_the_user_data_within_novas_limit() -> None:
    from astara.appliance.tls_files import ServerFiles
    from astara.providers.certificates import Authority

    issued = Authority.create().issue_server("fdca:3ba5:a17a:acda::5")
    text = nova_userdata.cloud_config(
        "fa:16:3e:00:00:01",
        "fdca:3ba5:a17a:acda::5/64",
        ssh_public_key="ssh-ed25519 " + "A" * 700,
        hostname="ak-router-r1",
        tls_bundle=issued.encode(),
    )
    (command,) = yaml.safe_load(text)["bootcmd"]
    bundle = command[command.index("--tls-bundle") + 1]
    assert ServerFiles.decode(bundle) == issued
    encoded = nova_userdata.encode(text)
    print(f"\nuser data with the TLS bundle: {len(encoded)} bytes of Nova's 65535")
    assert len(encoded) < 16384

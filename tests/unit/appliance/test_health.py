"""GET /v1/status/: gateways read from /proc, probes kept and shared (no root, no packets)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from astara.appliance import health

ROUTE = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
ge1\t0004A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
ge1\t00000000\t0104A8AC\t0003\t0\t0\t0\t00000000\t0\t0\t0
"""
ROUTE6 = (
    "20010db800ff00000000000000000000 40 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000100 00000001 00000000 00000001     ge1\n"
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "20010db800ff00000000000000000001 00000400 00000001 00000000 00000003     ge1\n"
)


def test_default_gateways_from_proc(tmp_path: Path) -> None:
    (tmp_path / "route").write_text(ROUTE)
    (tmp_path / "route6").write_text(ROUTE6)
    found = health.default_gateways(tmp_path / "route", tmp_path / "route6")
    assert found == {"v4": ("172.168.4.1", "ge1"), "v6": ("2001:db8:ff::1", "ge1")}
    (tmp_path / "route").write_text(ROUTE.splitlines()[0] + "\n")
    assert health.default_gateways(tmp_path / "route", tmp_path / "nope")["v4"] is None


def test_status_is_kept_shared_and_invalidated(monkeypatch: pytest.MonkeyPatch) -> None:
    probes: list[str] = []
    answer = {"v4": True}

    def fake_probe(gateways: dict[str, tuple[str, str] | None]) -> dict[str, bool]:
        probes.append(gateways["v4"][0])  # type: ignore[index]
        time.sleep(0.05)
        return {"v4": answer["v4"], "v6": False}

    monkeypatch.setattr(health, "probe", fake_probe)
    gateways = {"v4": ("192.0.2.1", "ge1"), "v6": None}
    monkeypatch.setattr(health, "default_gateways", lambda: dict(gateways))

    status = health.GatewayStatus()
    # concurrent requests share one probe
    with ThreadPoolExecutor(5) as pool:
        first = list(pool.map(lambda _: status.get(), range(5)))
    assert first == [{"v4": True, "v6": False}] * 5 and len(probes) == 1
    assert status.get() == {"v4": True, "v6": False} and len(probes) == 1  # fresh
    answer["v4"] = False
    gateways["v4"] = ("192.0.2.2", "ge1")  # another gateway: probed again, waited for
    assert status.get() == {"v4": False, "v6": False} and len(probes) == 2
    status._at -= health.FRESH + 1  # stale: answered at once, refreshed in the background
    answer["v4"] = True
    assert status.get() == {"v4": False, "v6": False}
    assert status._probe is not None
    status._probe.result(5)  # the background refresh
    assert status.get() == {"v4": True, "v6": False} and len(probes) == 3


def test_reply_is_matched_by_source_kind_ident_and_seq() -> None:
    import struct

    reply = struct.pack("!BBHHH", 0, 0, 0, 7, 9) + health.PAYLOAD
    ip_head = bytes([0x45]) + bytes(19)  # IPv4 raw sockets read the IP header too
    assert health._is_reply(ip_head + reply, "192.0.2.1", "192.0.2.1", False, (7, 9))
    assert not health._is_reply(ip_head + reply, "192.0.2.9", "192.0.2.1", False, (7, 9))
    assert not health._is_reply(ip_head + reply, "192.0.2.1", "192.0.2.1", False, (7, 10))
    reply6 = struct.pack("!BBHHH", 129, 0, 0, 7, 9)
    assert health._is_reply(reply6, "fe80::1%ge1", "fe80::1", True, (7, 9))
    assert not health._is_reply(reply6[:4], "fe80::1", "fe80::1", True, (7, 9))


def test_a_family_without_a_gateway_is_null_not_unreachable() -> None:
    # null: nothing to reach (the orchestrator says nothing); false is kept for a gateway
    # that did not answer (reported as unreachable).
    assert health.probe({"v4": None, "v6": None}, timeout=0.01) == {"v4": None, "v6": None}

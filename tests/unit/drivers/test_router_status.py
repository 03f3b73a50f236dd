"""RouterStatuses: Neutron's router status from the appliance's and the router's own state."""

from __future__ import annotations

import logging

import pytest

from astara.drivers.router_status import RouterStatuses, forwards
from astara.neutron.models import Router

UP, DOWN = Router("r", "t"), Router("r", "t", admin_state_up=False)


def statuses() -> tuple[RouterStatuses, list[tuple[str, str]]]:
    sent: list[tuple[str, str]] = []
    return RouterStatuses(lambda router, status, reason: sent.append((status, reason))), sent


def test_the_appliance_status_passes_through_while_the_router_is_up() -> None:
    st, sent = statuses()
    st.router_read(UP)
    st.report("r", "BUILD")
    st.report("r", "ACTIVE")
    assert sent == [("BUILD", ""), ("ACTIVE", "")]


def test_admin_down_shows_down_and_back_up_shows_active() -> None:
    st, sent = statuses()
    st.report("r", "ACTIVE")
    st.router_read(DOWN)  # the appliance stays configured: no report of its own
    st.router_read(DOWN)  # read again (drift check): nothing new
    st.router_read(UP)
    assert sent == [("ACTIVE", ""), ("DOWN", ""), ("ACTIVE", "")]


def test_admin_down_is_remembered_for_the_next_report_and_errors_stay_errors() -> None:
    st, sent = statuses()
    st.router_read(DOWN)  # read before anything was reported: nothing to send
    st.report("r", "BUILD")
    st.report("r", "ACTIVE")
    st.report("r", "ERROR")
    assert sent == [("BUILD", ""), ("DOWN", ""), ("ERROR", "")]


def test_a_deleted_router_is_forgotten() -> None:
    st, sent = statuses()
    st.router_read(DOWN)
    st.report("r", "ACTIVE")
    st.forget("r")
    st.report("r", "ACTIVE")
    assert sent == [("DOWN", ""), ("ACTIVE", "")]


REFUSALS = [("ha", "ha-unsupported"), ("distributed", "distributed-unsupported")]


@pytest.mark.parametrize(("flag", "code"), REFUSALS)
def test_ha_and_distributed_routers_are_refused_loudly(
    flag: str, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    refused = Router("r", "t", **{flag: True})
    assert not forwards(refused) and forwards(UP) and not forwards(DOWN)
    st, sent = statuses()
    st.report("r", "ACTIVE")
    with caplog.at_level(logging.WARNING, logger="astara.drivers.router_status"):
        st.router_read(refused)
        st.router_read(refused)
    assert [r.getMessage() for r in caplog.records if "router r refused" in r.getMessage()]
    assert len(caplog.records) == 1  # once, when it starts
    st.report("r", "ACTIVE")
    st.router_read(UP)  # the flag cleared (Neutron allows it while the router is down)
    assert sent == [("ACTIVE", ""), ("ERROR", code), ("ERROR", code), ("ACTIVE", "")]

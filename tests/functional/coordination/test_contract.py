"""The coordination contract, one test body run against each real backend (ZooKeeper, etcd,
Redis), each started by the kit's coordination_service through pifpaf in a throwaway
directory on a free loopback port and stopped by PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from astara.coordination.base import CoordinationError
from astara.coordination.membership import Membership
from astara.coordination.tooz_backend import ToozCoordinator
from astara.core.ownership import Ownership
from astara_localcloud import coordination_service

GROUP = "astara.contract"

# A member in another process, killed with SIGKILL: it never leaves, the service must expire it.
MEMBER = """
import sys, time
from astara.coordination.tooz_backend import ToozCoordinator
c = ToozCoordinator(sys.argv[1], sys.argv[2], sys.argv[3])
c.join()
print("joined", flush=True)
while True:
    c.heartbeat()
    time.sleep(0.5)
"""


@pytest.fixture(scope="module", params=coordination_service.BACKENDS)
def service(request: pytest.FixtureRequest) -> Iterator[coordination_service.CoordinationService]:
    why = coordination_service.missing_tools(request.param)
    if why:
        pytest.fail(f"{request.param}: {why}", pytrace=False)
    running = coordination_service.start(request.param)
    try:
        yield running
    finally:
        running.stop()


def wait(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return bool(predicate())


def test_join_members_leave(service: coordination_service.CoordinationService) -> None:
    group = f"{GROUP}.basic"
    a = ToozCoordinator(service.url, group, "member-a")
    b = ToozCoordinator(service.url, group, "member-b")
    a.join()
    b.join()
    try:
        a.heartbeat()
        b.heartbeat()
        assert a.members() == b.members() == {"member-a", "member-b"}
        b.leave()
        assert wait(lambda: a.members() == {"member-a"}, 10), a.members()
        b.join()  # a member that left can come back
        assert wait(lambda: a.members() == {"member-a", "member-b"}, 10)
    finally:
        a.leave()
        b.leave()


def test_killed_member_expires(service: coordination_service.CoordinationService) -> None:
    group = f"{GROUP}.expiry"
    a = ToozCoordinator(service.url, group, "survivor")
    a.join()
    member = subprocess.Popen(
        [sys.executable, "-c", MEMBER, service.url, group, "victim"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert member.stdout is not None and member.stdout.readline().strip() == "joined"
        assert wait(lambda: a.members() == {"survivor", "victim"}, 10)
        os.kill(member.pid, signal.SIGKILL)
        member.wait()

        def expired() -> bool:
            a.heartbeat()
            return a.members() == {"survivor"}

        # The URL's timeout is 5 s: a dead member must go, while the live one stays.
        assert wait(expired, coordination_service.TIMEOUT * 4), a.members()
    finally:
        if member.poll() is None:
            os.kill(member.pid, signal.SIGKILL)
            member.wait()
        a.leave()


def test_membership_partitions_ownership(
    service: coordination_service.CoordinationService,
) -> None:
    """Two members' heartbeat loops on the real service: every id owned by exactly one of them
    (after the settle delay), and all by the survivor once the other leaves."""
    group = f"{GROUP}.ring"
    ids = [f"router-{n}" for n in range(60)]
    loops = {}
    for name in ("m1", "m2"):
        own = Ownership(name, time.monotonic, settle=0.0, lease=3.0)
        loops[name] = Membership(
            ToozCoordinator(service.url, group, name),
            own,
            0.5,
            on_change=lambda change: None,
            on_lapse=lambda: None,
            known=lambda: (),
        )
    for loop in loops.values():
        loop.start()
    try:
        assert wait(
            lambda: all(loop.ownership.ring.members == {"m1", "m2"} for loop in loops.values()),
            10,
        )
        for rid in ids:
            owners = [name for name, loop in loops.items() if loop.ownership.owns(rid)]
            assert len(owners) == 1, (rid, owners)
        assert 0 < sum(loops["m1"].ownership.owns(rid) for rid in ids) < len(ids)
        loops["m2"].stop()
        assert wait(lambda: loops["m1"].ownership.ring.members == {"m1"}, 10)
        assert all(loops["m1"].ownership.owns(rid) for rid in ids)
    finally:
        for loop in loops.values():
            loop.stop()


def test_unreachable_service_fails_to_join(
    service: coordination_service.CoordinationService,
) -> None:
    from astara_localcloud.services import free_port

    url = coordination_service.tooz_url(service.backend, free_port())
    with pytest.raises(CoordinationError):
        coordinator = ToozCoordinator(url, GROUP, "lonely")
        try:
            coordinator.join()
            coordinator.heartbeat()
            coordinator.members()
        finally:
            coordinator.leave()

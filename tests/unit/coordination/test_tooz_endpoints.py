"""Where a coordination URL points, and the quick refusal when nothing listens there."""

from __future__ import annotations

import socket

import pytest

from astara.coordination.base import CoordinationError
from astara.coordination.tooz_backend import ToozCoordinator, endpoints


def test_endpoints_of_each_backend_url() -> None:
    assert endpoints("kazoo://zk1:2181,zk2:2182?timeout=5") == [("zk1", 2181), ("zk2", 2182)]
    assert endpoints("etcd3+http://[fd00::5]:2379?timeout=5") == [("fd00::5", 2379)]
    assert endpoints("redis://:secret@r1?timeout=5") == [("r1", 6379)]
    assert endpoints("file:///var/lib/astara/coordination") == []  # not host-based: no check
    assert endpoints("redis://r1:notaport") == []


def test_an_unreachable_service_is_refused_at_once() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    coordinator = ToozCoordinator(f"redis://127.0.0.1:{port}?timeout=5", "g", "m")
    with pytest.raises(CoordinationError, match=rf"unreachable \(127.0.0.1:{port}: "):
        coordinator.join()

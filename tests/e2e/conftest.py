"""The e2e tier's shared fixture: one local cloud (neutron-server, fabric, orchestrator) per module.

A module that needs another cloud (no orchestrator, or Nova) defines its own ``kit`` fixture,
which overrides this one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.kit import E2EKit


@pytest.fixture(scope="module")
def kit(rabbitmq: None) -> Iterator[E2EKit]:
    kit = E2EKit()
    try:
        kit.up()
        yield kit
    finally:
        kit.down()

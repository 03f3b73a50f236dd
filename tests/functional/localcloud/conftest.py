"""A kit fabric per test: unique prefix, namespaces recorded where the harness cleans up."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from astara.linux.netns import NamespaceRegistry
from astara_localcloud.fabric import KitFabric
from tests.conftest import RUN_DIR
from tests.functional.localcloud.netns_kit import netns_kit

__all__ = ["fabric", "kit_state_dir", "netns_kit"]


@pytest.fixture
def kit_state_dir() -> Iterator[Path]:
    path = RUN_DIR / "state" / f"kit-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def fabric() -> Iterator[KitFabric]:
    prefix = f"at{uuid.uuid4().hex[:6]}"
    registry = NamespaceRegistry(RUN_DIR / "topologies" / f"{prefix}.json")
    kit_fabric = KitFabric(prefix, registry)
    try:
        yield kit_fabric
    finally:
        registry.delete_all()

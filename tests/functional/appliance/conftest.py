"""One appliance lab shared by the tests of a module (building it takes a few seconds)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator

import pytest

from astara.linux.netns import Topology
from astara.linux.processes import ProcessTracker
from tests.conftest import RUN_DIR
from tests.functional.appliance.lab import Lab


@pytest.fixture(scope="module")
def lab(process_tracker: ProcessTracker) -> Iterator[Lab]:
    prefix = f"ap{uuid.uuid4().hex[:6]}"
    topo = Topology(prefix, registry=RUN_DIR / "topologies" / f"{prefix}.json")
    workdir = RUN_DIR / "appliance" / prefix
    workdir.mkdir(parents=True, exist_ok=True)
    lab = Lab(topo, process_tracker, workdir)
    try:
        lab.build()
        lab.start_appliance()
        yield lab
    finally:
        lab.close()
        topo.destroy()
        shutil.rmtree(workdir, ignore_errors=True)

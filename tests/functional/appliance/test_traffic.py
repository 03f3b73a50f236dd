"""The traffic contract (traffic.py) on the netns appliance: the module's lab (conftest.py)."""

from __future__ import annotations

from tests.functional.appliance.traffic import TrafficChecks


class TestNetnsAppliance(TrafficChecks):
    """The appliance's programs in a network namespace, its API plain HTTP."""

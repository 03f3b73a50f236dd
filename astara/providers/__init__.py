"""Compute providers: where appliances run (``nova``, ``netns``, the in-memory ``fake``).

The orchestrator picks one by name (``compute_provider`` option) among the
``astara.compute_providers`` entry points; each provider class builds itself from the
orchestrator's configuration with ``from_conf(conf)``.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from astara.core.interfaces import ComputeProvider

ENTRY_POINT_GROUP = "astara.compute_providers"


def available() -> list[str]:
    """Names of the installed compute providers."""
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def load_provider(conf: Any, name: str | None = None) -> ComputeProvider:
    """The compute provider ``name`` (default: ``conf.compute_provider``), built from ``conf``."""
    wanted = name or conf.compute_provider
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == wanted]
    if not found:
        raise LookupError(f"no compute provider {wanted!r}; installed: {', '.join(available())}")
    provider: ComputeProvider = found[0].load().from_conf(conf)
    return provider

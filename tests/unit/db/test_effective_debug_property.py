"""The precedence of debug modes (resource, then tenant, then global), for any set of modes."""

from __future__ import annotations

import datetime

from hypothesis import given
from hypothesis import strategies as st

from astara.core.events import Resource
from astara.db.api import GLOBAL_TARGET, DebugEntry, pick_effective
from astara.db.models import DebugScope

SINCE = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
IDS = st.sampled_from(["a", "b", "c"])


def _entry(scope: DebugScope, target: str) -> DebugEntry:
    return DebugEntry(scope, GLOBAL_TARGET if scope is DebugScope.GLOBAL else target, "r", SINCE)


@given(
    modes=st.lists(st.tuples(st.sampled_from(list(DebugScope)), IDS), unique=True),
    resource_id=IDS,
    tenant_id=IDS,
)
def test_the_narrowest_applying_mode_wins(
    modes: list[tuple[DebugScope, str]], resource_id: str, tenant_id: str
):
    entries = [_entry(scope, target) for scope, target in modes]
    picked = pick_effective(entries, Resource(resource_id, tenant_id))
    own = (DebugScope.RESOURCE, resource_id) in modes
    tenant = (DebugScope.TENANT, tenant_id) in modes
    everyone = any(scope is DebugScope.GLOBAL for scope, _ in modes)
    if own:
        assert picked == _entry(DebugScope.RESOURCE, resource_id)
    elif tenant:
        assert picked == _entry(DebugScope.TENANT, tenant_id)
    elif everyone:
        assert picked is not None and picked.scope is DebugScope.GLOBAL
    else:
        assert picked is None

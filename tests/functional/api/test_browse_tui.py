"""astara-ctl browse, driven by textual's pilot against the served management API."""

from __future__ import annotations

import asyncio

from astara.cli.browse import FleetBrowser, matches
from astara.cli.client import ApiClient
from astara.core.events import Action
from tests.functional.api.conftest import Served


def _rows(app: FleetBrowser) -> list[str]:
    table = app.query_one("#fleet")
    return [str(key.value) for key in table.rows]  # type: ignore[attr-defined]


async def _settle(app: FleetBrowser) -> None:
    await app.workers.wait_for_complete()
    await asyncio.sleep(0.05)


def test_fleet_table_filter_and_rebuild_from_the_keyboard(api: Served):
    async def drive() -> None:
        app = FleetBrowser(ApiClient(api.server.url), refresh_seconds=60)
        async with app.run_test(size=(160, 40)) as pilot:
            await _settle(app)
            await pilot.pause()
            assert _rows(app) == ["r-1", "r-2", "r-err"]

            await pilot.press("slash", *"tenant-b", "enter")
            await pilot.pause()
            assert _rows(app) == ["r-err"]

            await pilot.press("r")
            await _settle(app)
            await pilot.press("d")
            await _settle(app)
            await pilot.pause()
            await pilot.press("q")

    asyncio.run(drive())
    assert [(e.resource.id, e.action) for e in api.control.events] == [
        ("r-err", Action.REBUILD),
        ("r-err", Action.COMMAND),
    ]
    assert [e.reason for e in api.store.list_resource_debug()] == ["from astara-ctl browse"]


def test_unreachable_orchestrator_is_a_notification_not_a_crash():
    async def drive() -> list[str]:
        app = FleetBrowser(ApiClient("http://127.0.0.1:1"), refresh_seconds=60)
        async with app.run_test() as pilot:
            await _settle(app)
            await pilot.pause()
            shown = [n.message for n in app._notifications]
            await pilot.press("q")
        return shown

    messages = asyncio.run(drive())
    assert any(m.startswith("cannot reach the orchestrator") for m in messages)


def test_filter_matches_any_shown_column():
    view = {"id": "r-1", "tenant_id": "T-9", "state": "CalcAction", "debug_reason": None}
    assert matches(view, "t-9") and matches(view, "") and matches(view, "calc")
    assert not matches(view, "error")

"""``astara-ctl browse``: a live console of the fleet (textual).

A table of every resource, refreshed every few seconds, filtered as you type; ``r`` rebuilds
and ``u`` updates the selected router, ``d``/``m`` put it in and out of debug mode.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Header, Input

from astara.cli.client import ApiClient, ClientError

COLUMNS = ("id", "tenant_id", "state", "instance_status", "worker", "debug_reason", "last_error")


def matches(view: dict[str, Any], text: str) -> bool:
    """Does ``text`` occur in any of the columns shown (case-insensitive)?"""
    needle = text.strip().lower()
    return not needle or any(needle in str(view.get(c) or "").lower() for c in COLUMNS)


class FleetBrowser(App[None]):
    """The fleet table: filter, refresh, rebuild from the keyboard."""

    TITLE = "astara fleet"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "command('rebuild')", "Rebuild"),
        Binding("u", "command('update')", "Update"),
        Binding("d", "command('debug')", "Debug"),
        Binding("m", "command('manage')", "Manage"),
        Binding("slash", "focus_filter", "Filter"),
        Binding("f5", "refresh", "Refresh"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, client: ApiClient, refresh_seconds: float = 5.0) -> None:
        super().__init__()
        self.client = client
        self.refresh_seconds = refresh_seconds
        self.views: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="filter: id, tenant, state, reason ...", id="filter")
        yield DataTable(id="fleet", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self.client.url
        self.query_one(DataTable).add_columns(*COLUMNS)
        self.query_one(DataTable).focus()
        self.action_refresh()
        self.set_interval(self.refresh_seconds, self.action_refresh)

    @work(thread=True, exclusive=True, group="refresh")
    def action_refresh(self) -> None:
        """Fetch the fleet (in a thread: the UI never waits on the network)."""
        try:
            views = self.client.list_resources()
        except ClientError as err:
            self.call_from_thread(self.notify, str(err), severity="error")
            return
        self.call_from_thread(self._show, views)

    def _show(self, views: list[dict[str, Any]]) -> None:
        self.views = views
        table = self.query_one(DataTable)
        selected = self.selected_id()
        table.clear()
        for view in views:
            if matches(view, self.query_one(Input).value):
                table.add_row(*(str(view.get(c) or "") for c in COLUMNS), key=view["id"])
        if selected is not None and selected in table.rows:
            table.move_cursor(row=table.get_row_index(selected))

    def on_input_changed(self, _event: Input.Changed) -> None:
        self._show(self.views)

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self.query_one(DataTable).focus()

    def action_focus_filter(self) -> None:
        self.query_one(Input).focus()

    def selected_id(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return str(key.value) if key.value is not None else None

    def action_command(self, command: str) -> None:
        """Send ``command`` (rebuild | update | debug | manage) for the selected resource."""
        resource_id = self.selected_id()
        if resource_id is None:
            self.notify("no resource selected", severity="warning")
            return
        self._send(resource_id, command)

    @work(thread=True, group="commands")
    def _send(self, resource_id: str, command: str) -> None:
        body = {"reason": "from astara-ctl browse"} if command == "debug" else None
        try:
            self.client.resource_command(resource_id, command, body)
        except ClientError as err:
            self.call_from_thread(self.notify, str(err), severity="error")
            return
        self.call_from_thread(self.notify, f"{command} sent to {resource_id}")
        self.call_from_thread(self.action_refresh)

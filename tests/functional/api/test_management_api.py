"""The management API over real HTTP: every command, its events, the debug store, auth."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from astara.core.events import Action
from astara.db.api import DebugStore
from astara.db.engine import get_engine
from astara.orchestrator.api import ApiServerError, ManagementServer
from tests.functional.api.conftest import Served, make_conf
from tests.unit.api.fake_control import FakeControl, router_view


def test_list_and_show_resources_with_their_state(api: Served):
    listed = api.http.get("/v1/resources").json()
    assert [r["id"] for r in listed] == ["r-1", "r-2", "r-err"]
    shown = api.http.get("/v1/resources/r-err").json()
    assert shown["instance_status"] == "error"
    assert shown["last_error"] == "boot timed out after 600 s"
    assert shown["boot_failures"] == 5
    assert [t["to_state"] for t in shown["transitions"]] == ["CreateInstance", "ClearError"]
    assert api.http.get("/v1/routers/r-1").json()["management_address"].startswith("fdca:")


@pytest.mark.parametrize("path", ["/v1/resources/nope", "/v1/routers/nope"])
def test_unknown_resource_is_404_with_a_clear_message(api: Served, path: str):
    response = api.http.get(path)
    assert response.status_code == 404
    assert response.json() == {"detail": "unknown resource nope"}
    assert api.http.post("/v1/resources/nope/rebuild").status_code == 404
    assert api.http.put("/router/rebuild/nope").status_code == 404
    assert api.control.events == []


@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/poll"), ("PUT", "/poll/")])
def test_poll(api: Served, method: str, path: str):
    response = api.http.request(method, path)
    assert response.json() == {"command": "poll", "target": "*", "submitted": 3, "detail": ""}
    assert api.control.polls == 1


def test_rebuild_with_an_image_and_update_become_events(api: Served):
    api.http.post("/v1/resources/r-1/rebuild", json={"image": "img-2"}).raise_for_status()
    api.http.put("/router/rebuild/r-2").raise_for_status()
    api.http.post("/v1/routers/r-err/update").raise_for_status()
    got = [
        (e.resource.id, e.resource.tenant_id, e.action, dict(e.body)) for e in api.control.events
    ]
    assert got == [
        ("r-1", "tenant-a", Action.REBUILD, {"image": "img-2"}),
        ("r-2", "tenant-a", Action.REBUILD, {}),
        ("r-err", "tenant-b", Action.UPDATE, {}),
    ]


def test_resource_debug_then_manage(api: Served):
    result = api.http.post("/v1/resources/r-1/debug", json={"reason": "disk full"}).json()
    assert result["command"] == "debug" and result["submitted"] == 1
    assert [e.reason for e in api.store.list_resource_debug()] == ["disk full"]
    assert api.http.get("/v1/resources/r-1").json()["debug_reason"].endswith("disk full")
    assert api.http.get("/v1/resources/r-2").json()["debug_reason"] is None

    api.http.post("/v1/routers/r-1/manage").raise_for_status()
    assert api.store.list_resource_debug() == []
    actions = [(e.action, e.body["command"]) for e in api.control.events]
    assert actions == [(Action.COMMAND, "debug"), (Action.UPDATE, "manage")]
    again = api.http.put("/router/manage/r-1").json()
    assert again["detail"] == "resource r-1 was not in debug mode"


def test_tenant_debug_reaches_only_that_tenants_resources(api: Served):
    api.http.post("/v1/tenants/tenant-a/debug", json={"reason": "migration"}).raise_for_status()
    assert [e.resource.id for e in api.control.events] == ["r-1", "r-2"]
    reasons = {r["id"]: r["debug_reason"] for r in api.http.get("/v1/resources").json()}
    assert "tenant tenant-a" in reasons["r-1"] and reasons["r-err"] is None
    api.http.post("/v1/tenants/tenant-a/manage").raise_for_status()
    assert api.store.entries() == []
    assert api.http.put("/tenant/debug/tenant-b").json()["submitted"] == 1


def test_global_debug_enable_and_disable(api: Served):
    api.http.post("/v1/global/debug/enable", json={"reason": "upgrade"}).raise_for_status()
    entry = api.store.global_debug()
    assert entry is not None and entry.reason == "upgrade"
    modes = api.http.get("/v1/debug").json()
    assert [(m["scope"], m["reason"]) for m in modes] == [("global", "upgrade")]
    assert api.http.post("/v1/global/debug/disable").json()["submitted"] == 3
    assert api.store.global_debug() is None
    assert {e.action for e in api.control.events} == {Action.COMMAND, Action.UPDATE}


def test_workers_debug_config_reload_and_health(api: Served):
    report = api.http.post("/v1/workers/debug").json()
    assert report == api.control.workers_report()
    assert api.http.put("/workers/debug/").json() == report
    api.http.post("/v1/config/reload").raise_for_status()
    assert api.control.reloads == 1
    assert api.http.get("/v1/health").json()["listener"]["messages"] == 42
    assert api.http.get("/health").status_code == 200


def test_metrics_read_what_the_orchestrator_reports(api: Served):
    api.http.get("/v1/resources").raise_for_status()
    text = api.http.get("/metrics").text
    assert 'astara_resources{instance_status="error",kind="router",state="Exit"} 1.0' in text
    assert "astara_health_listener_messages 42.0" in text
    assert 'astara_workers_workers_queued{workers="0"} 1.0' in text
    assert 'astara_workers_transitions{transitions="r-1"} 7.0' in text
    assert "astara_resource_boot_failures 5.0" in text
    assert 'astara_api_requests_total{method="GET",route="/v1/resources",status="200"}' in text


def test_openapi_document_lists_the_v1_api(api: Served):
    paths = api.http.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/resources/{resource_id}/rebuild",
        "/v1/tenants/{tenant_id}/debug",
        "/v1/global/debug/enable",
        "/v1/poll",
        "/v1/config/reload",
        "/metrics",
    ):
        assert path in paths


def test_a_configured_token_is_required(serve: Callable[..., Served]):
    api = serve(token="s3cret")
    assert api.http.get("/v1/resources").status_code == 401
    assert api.http.get("/v1/resources", headers={"X-Auth-Token": "wrong"}).status_code == 401
    assert api.http.put("/poll/").status_code == 401 and api.control.polls == 0
    ok = api.http.get("/v1/resources", headers={"X-Auth-Token": "s3cret"})
    assert ok.status_code == 200
    bearer = api.http.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert bearer.status_code == 200
    assert api.http.get("/openapi.json").status_code == 200  # the document stays public


def test_debug_modes_survive_a_restart_of_the_api(serve: Callable[..., Served]):
    first = serve()
    first.http.post("/v1/resources/r-1/debug", json={"reason": "kept"}).raise_for_status()
    first.server.stop()
    second = serve(control=FakeControl(first.control.list_resources()))
    assert second.http.get("/v1/resources/r-1").json()["debug_reason"].endswith("kept")


def test_listen_errors_are_one_line(tmp_path: Path):
    busy = socket.socket(socket.AF_INET6)
    busy.bind(("::1", 0))
    busy.listen(1)
    conf = make_conf(tmp_path)
    conf.set_override("api_port", busy.getsockname()[1])
    try:
        with pytest.raises(ApiServerError, match=r"^cannot listen on \[::1\]:\d+: Address"):
            ManagementServer(conf, FakeControl()).start()
    finally:
        busy.close()
    conf.set_override("api_listen", "localhost")
    with pytest.raises(ApiServerError, match="api_listen must be an IP address"):
        ManagementServer(conf, FakeControl()).start()


def test_stop_closes_the_port(serve: Callable[..., Served]):
    api = serve()
    url = api.server.url
    api.server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/v1/health", timeout=2)


def test_an_unreachable_database_is_503_in_one_line(tmp_path: Path):
    conf = make_conf(tmp_path)
    store = DebugStore(get_engine("mysql+pymysql://astara:pw@127.0.0.1:1/astara"))
    server = ManagementServer(conf, FakeControl([router_view("r-1")]), store)
    server.start()
    try:
        response = httpx.post(f"{server.url}/v1/resources/r-1/debug", json={"reason": "x"})
    finally:
        server.stop()
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert detail.startswith("debug-mode database: ") and "\n" not in detail


def test_no_token_no_api_off_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("ASTARA_API_TOKEN", raising=False)
    conf = make_conf(tmp_path)
    conf.set_override("api_listen", "::")
    with pytest.raises(ApiServerError, match="refusing to serve the management API on :: "):
        ManagementServer(conf, FakeControl()).start()
    conf.set_override("api_listen", "192.0.2.1")
    with pytest.raises(ApiServerError, match="without a token"):
        ManagementServer(conf, FakeControl()).start()


def test_token_from_a_file_guards_every_request(tmp_path: Path):
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    token_file.chmod(0o600)
    conf = make_conf(tmp_path)
    conf.set_override("api_token_file", str(token_file))
    server = ManagementServer(conf, FakeControl())
    server.start()
    try:
        assert httpx.get(f"{server.url}/v1/health").status_code == 401
        ok = httpx.get(f"{server.url}/v1/health", headers={"X-Auth-Token": "from-file"})
        assert ok.status_code == 200
    finally:
        server.stop()


def test_resync_and_forced_resync(serve: Callable[..., Served]):
    api = serve()
    assert api.http.post("/v1/resync").json()["forced"] is False
    forced = api.http.post("/v1/resync", json={"force": True})
    assert forced.status_code == 200 and forced.json()["forced"] is True
    assert api.control.resyncs == [False, True]

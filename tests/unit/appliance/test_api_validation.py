"""The API refuses bad input before it touches the box: 415, 422 with paths, never a 500."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from astara.appliance import links
from astara.appliance.api import ApplianceAPI
from astara.appliance.apply import Appliance
from astara.appliance.openapi import openapi_json
from astara.appliance.state import StateDir
from tests.functional.appliance.lab import base_document
from tests.unit.appliance.loopback import Client, serving


def _host_untouchable(*args: object, **kwargs: object) -> None:
    raise AssertionError(f"a unit test tried to change the host: {args}")


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """The API served on loopback for a box with no NICs, that fails the test if it touches
    the host.

    Unit tests run in the host's root namespace: the appliance's link, address, nftables and
    daemon code must never run here (it would rename and reconfigure the host's own NICs).
    """
    monkeypatch.setattr(links, "snapshot", lambda: [])
    monkeypatch.setattr(links, "snapshot_links", lambda: [])
    monkeypatch.setattr(subprocess, "run", _host_untouchable)
    monkeypatch.setattr(subprocess, "Popen", _host_untouchable)
    with serving(ApplianceAPI(Appliance(StateDir(tmp_path)))) as client:
        yield client


def test_wrong_content_type_is_415(client: Client) -> None:
    resp = client.put(
        "/v1/system/config/",
        content=b"a=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.status_code == 415
    assert "application/json" in resp.json()["detail"]


def test_missing_content_type_is_415(client: Client) -> None:
    assert client.put("/v1/system/config/", content=b"{}").status_code == 415


DEEP = b"[" * 100_000 + b"]" * 100_000  # json.loads raises RecursionError


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"\xff\xfe",
        b"[]",
        b"null",
        b'"x"',
        b"1e999999",
        DEEP,
        b'{"version": 1, "configuration": ' + DEEP + b"}",
    ],
)
def test_garbage_is_422(client: Client, body: bytes) -> None:
    resp = client.put(
        "/v1/system/config/", content=body, headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["loc"][0] == "body"
    resp = client.put("/v1/system/config/floating_ips/", content=body,
                      headers={"Content-Type": "application/json"})  # fmt: skip
    assert resp.status_code == 422


def test_invalid_document_lists_every_bad_field(client: Client) -> None:
    doc = base_document()
    doc["configuration"]["networks"][2]["address_allocations"][0]["hostname"] = "a;b"
    doc["configuration"]["networks"][2]["interface"]["addresses"][0] = "10.99.0.1/24"
    resp = client.put("/v1/system/config/", json=doc)
    assert resp.status_code == 422
    locs = {tuple(e["loc"]) for e in resp.json()["detail"]}
    assert locs == {
        ("body", "configuration", "networks", 2, "address_allocations", 0, "hostname"),
    }  # structural errors first: meaning is checked once the structure is right
    doc["configuration"]["networks"][2]["address_allocations"][0]["hostname"] = "ok"
    resp = client.put("/v1/system/config/", json=doc)
    assert resp.status_code == 422
    assert [e["loc"] for e in resp.json()["detail"]] == [
        ["body", "configuration", "networks", 2, "interface", "addresses", 0]
    ]


def test_config_before_any_put_is_the_empty_document(client: Client) -> None:
    assert client.get("/v1/system/config").json() == {
        "version": 1,
        "configuration": {
            "networks": [],
            "static_routes": [],
            "floating_ips": [],
            "tenant_id": "",
            "hostname": None,
            "default_v4_gateway": None,
            "asn": None,
            "neighbor_asn": None,
            "orchestrator": None,
            "enable_snat": True,
            "admin_state_up": True,
        },
    }


def test_openapi_documents_every_route_and_the_document(client: Client) -> None:
    spec = client.get("/openapi.json").json()
    assert {
        "/v1/status/",
        "/v1/firewall/rules/",
        "/v1/system/interfaces",
        "/v1/system/interface/{ifname}/",
        "/v1/system/config",
        "/v1/system/config/",
        "/v1/system/stats",
    } <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    assert {"Document", "Configuration", "Network", "Interface"} <= set(schemas)
    body = spec["paths"]["/v1/system/config/"]["put"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/Document"


def test_published_openapi_document_is_current() -> None:
    published = Path(__file__).resolve().parents[3] / "docs" / "appliance-openapi.json"
    assert published.read_text() == openapi_json(), (
        "regenerate: .venv/bin/python -m astara.appliance.openapi > docs/appliance-openapi.json"
    )


def test_unclaimed_box_refuses_to_touch_nics(client: Client) -> None:
    """Without astara-configure-management's record the API renames and configures nothing."""
    resp = client.get("/v1/system/interfaces")
    assert resp.status_code == 503
    assert "astara-configure-management" in resp.json()["detail"]
    resp = client.put("/v1/system/config/", json=base_document())
    assert resp.status_code == 503


def test_floating_ips_endpoint_refuses_bad_input_before_the_box(client: Client) -> None:
    url = "/v1/system/config/floating_ips/"
    assert client.put(url, content=b"{}", headers={"Content-Type": "text/plain"}).status_code == 415
    for body in (b"{garbage", b"[]", b'{"floating_ips": [], "x": 1}'):
        resp = client.put(url, content=body, headers={"Content-Type": "application/json"})
        assert resp.status_code == 422, body
    resp = client.put(
        url, json={"floating_ips": [{"floating_ip": "nope", "fixed_ip": "10.0.0.256"}]}
    )
    assert resp.status_code == 422
    assert {tuple(e["loc"]) for e in resp.json()["detail"]} == {
        ("body", "floating_ips", 0, "floating_ip"),
        ("body", "floating_ips", 0, "fixed_ip"),
    }
    # valid items, but the running (empty) document has no external network for them
    resp = client.put(
        url, json={"floating_ips": [{"floating_ip": "1.2.3.4", "fixed_ip": "1.2.3.5"}]}
    )
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["loc"][:3] == ["body", "floating_ips", 0]
    etag = client.get("/v1/system/config").headers["ETag"]
    resp = client.put(url, json={"floating_ips": []}, headers={"If-Match": '"other-1"'})
    assert resp.status_code == 412 and resp.headers["ETag"] == etag
    spec = client.get("/openapi.json").json()
    assert "If-Match" in str(spec["paths"][url]["put"]["parameters"])


def test_unknown_paths_and_methods(client: Client) -> None:
    assert client.get("/v1/nope").status_code == 404
    assert client.get("/v1/nope").json() == {"detail": "Not Found"}
    resp = client.request("DELETE", "/v1/system/config/")
    assert resp.status_code == 405 and resp.headers["Allow"] == "GET, PUT"
    assert client.get("/v1/system/config/floating_ips").status_code == 405
    # every path answers with and without its trailing slash
    assert client.get("/v1/system/config/").json()["version"] == 1
    assert client.get("/v1/system/interface/ge9").status_code == 503  # unclaimed box
    assert client.get("/v1/system/interface/a%2Fb/").status_code == 404  # no '/' in a name


def test_the_api_loads_no_framework() -> None:
    """What the API process loads stays small (the appliance's memory budget is 40 MB):
    no pydantic, FastAPI, uvicorn or asyncio; ssl and hashlib (OpenSSL) only with TLS."""
    import sys

    code = (
        "import sys; from astara.appliance import cli, api, apply, openapi; "
        "print(' '.join(sorted(sys.modules)))"
    )
    out = subprocess.check_output([sys.executable, "-c", code], text=True)
    heavy = (
        "pydantic",
        "pydantic_core",
        "fastapi",
        "starlette",
        "uvicorn",
        "anyio",
        "asyncio",
        "ssl",
        "_ssl",
        "hashlib",
        "_hashlib",
        "email",
        "http.server",
        "http.client",
    )
    assert not set(out.split()) & set(heavy)

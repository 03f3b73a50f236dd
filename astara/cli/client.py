"""A small client of the management HTTP API, with one-line errors for operators."""

from __future__ import annotations

import os
from typing import Any

import httpx

DEFAULT_PORT = 44250


class ClientError(Exception):
    """The orchestrator could not be reached or refused the request; one line says why."""


def base_url(listen: str, port: int) -> str:
    """The URL of an API listening on ``listen``:``port`` (wildcards become loopback)."""
    host = {"::": "::1", "0.0.0.0": "127.0.0.1", "": "::1"}.get(listen, listen)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def default_url(config_files: list[str] | None = None) -> str:
    """``$ASTARA_URL``, else api_listen/api_port of orchestrator.ini, else [::1]:44250."""
    if os.environ.get("ASTARA_URL"):
        return os.environ["ASTARA_URL"]
    from astara.orchestrator.settings import load_config  # oslo.config only when needed

    conf = load_config(config_files)
    return base_url(conf.api_listen, conf.api_port)


def default_token(
    config_files: list[str] | None = None, token_file: str | None = None
) -> str | None:
    """``token_file``'s first line, else ``$ASTARA_TOKEN``, else the orchestrator's own:
    api_token of orchestrator.ini, ``$ASTARA_API_TOKEN``, api_token_file (when readable)."""
    if token_file:
        try:
            with open(token_file, encoding="utf-8") as handle:
                return handle.readline().strip() or None
        except OSError as err:
            raise ClientError(f"cannot read the token file {token_file}: {err.strerror}") from None
    if os.environ.get("ASTARA_TOKEN"):
        return os.environ["ASTARA_TOKEN"]
    from astara.core.settings import ConfigError
    from astara.orchestrator.settings import api_token, load_config

    try:
        return api_token(load_config(config_files))
    except ConfigError as err:
        raise ClientError(str(err)) from None


class ApiClient:
    """The management API of one orchestrator."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        headers = {"X-Auth-Token": token} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = self._http.request(method, path, json=body)
        except httpx.ConnectError as err:
            raise ClientError(
                f"cannot reach the orchestrator at {self.url} ({_reason(err)}); is "
                "astara-orchestrator running? (set --url or ASTARA_URL)"
            ) from None
        except httpx.HTTPError as err:
            raise ClientError(f"orchestrator at {self.url}: {_reason(err)}") from None
        if response.status_code == 401:
            raise ClientError(
                f"the orchestrator at {self.url} refused the request (401): give the "
                "api_token with --token, --token-file or ASTARA_TOKEN"
            )
        if response.status_code >= 400:
            raise ClientError(_detail(response))
        return response.json()

    # -- resources -----------------------------------------------------------------------------
    def list_resources(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/v1/resources"))

    def get_resource(self, resource_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/v1/resources/{resource_id}"))

    def resource_command(
        self, resource_id: str, command: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """rebuild | update | debug | manage."""
        return dict(self.request("POST", f"/v1/resources/{resource_id}/{command}", body))

    def tenant_command(
        self, tenant_id: str, command: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """debug | manage."""
        return dict(self.request("POST", f"/v1/tenants/{tenant_id}/{command}", body))

    def global_debug(self, enable: bool, reason: str = "") -> dict[str, Any]:
        if enable:
            return dict(self.request("POST", "/v1/global/debug/enable", {"reason": reason}))
        return dict(self.request("POST", "/v1/global/debug/disable"))

    # -- the orchestrator ----------------------------------------------------------------------
    def cluster(self) -> dict[str, Any]:
        return dict(self.request("GET", "/v1/cluster"))

    def owner(self, resource_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/v1/cluster/owners/{resource_id}"))

    def poll(self) -> dict[str, Any]:
        return dict(self.request("POST", "/v1/poll"))

    def workers_report(self) -> dict[str, Any]:
        return dict(self.request("POST", "/v1/workers/debug"))

    def reload_config(self) -> dict[str, Any]:
        return dict(self.request("POST", "/v1/config/reload"))

    def resync(self, force: bool = False) -> dict[str, Any]:
        return dict(self.request("POST", "/v1/resync", {"force": force}))

    def debug_modes(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/v1/debug"))


def _reason(err: httpx.HTTPError) -> str:
    text = str(err) or type(err).__name__
    return text.splitlines()[0]


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    if isinstance(detail, list):  # validation errors: name the fields
        detail = "; ".join(
            f"{'.'.join(map(str, d.get('loc', ())))}: {d.get('msg')}" for d in detail
        )
    return str(detail or f"HTTP {response.status_code} from {response.request.url}")

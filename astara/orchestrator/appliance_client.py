"""The appliance REST API (DESIGN §5, seed §1.3.2) over HTTP, as an ApplianceClient.

- ``GET /v1/status/``: aliveness (any 200 within ``alive_timeout``);
- ``GET /v1/system/interfaces``: NICs by MAC, to detect needed replugs;
- ``GET|PUT /v1/system/config``: the configuration document (PUT waits ``config_timeout``);
  a 422 becomes :class:`ApplianceConfigRejected` naming every bad field's path;
- ``GET /v1/system/stats``: per-interface traffic counters.

IPv6 management addresses are bracketed in URLs. Proxy variables in the environment are
ignored: appliances are only reached directly on the management network.

The aliveness check is the hot path (every router, every ``health_check_period``): it uses the
standard library's ``http.client`` on a fresh connection, about three times cheaper per request
than httpx here (measured by ``benchmarks/health_sweep.py``); everything else uses httpx.
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
from collections.abc import Mapping
from typing import Any

import httpx

from astara.core.interfaces import ApplianceConfigRejected, ApplianceError

LOG = logging.getLogger(__name__)


def base_url(address: str, port: int) -> str:
    """``http://[v6]:port`` or ``http://v4:port`` (a name is used as it is)."""
    host = address.strip("[]")
    try:
        if ipaddress.ip_address(host.split("%")[0]).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass
    return f"http://{host}:{port}"


def _paths(detail: Any) -> list[str]:
    """Dotted paths of the bad fields in a 422 body (``body`` prefix dropped)."""
    if not isinstance(detail, list):
        return [str(detail)]
    paths = []
    for error in detail:
        loc = [str(p) for p in (error.get("loc") or []) if p != "body"]
        paths.append(".".join(loc) or "body")
    return paths


class HttpApplianceClient:
    """Talks to appliances over HTTP; one connection pool shared by every worker thread."""

    def __init__(
        self, alive_timeout: float = 3.0, config_timeout: float = 90.0, max_connections: int = 100
    ) -> None:
        self.alive_timeout = alive_timeout
        self.config_timeout = config_timeout
        self._http = httpx.Client(
            trust_env=False,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )

    @classmethod
    def from_conf(cls, conf: Any) -> HttpApplianceClient:
        return cls(alive_timeout=conf.alive_timeout, config_timeout=conf.config_timeout)

    def close(self) -> None:
        self._http.close()

    def _call(
        self, method: str, address: str, port: int, path: str, timeout: float, **kwargs: Any
    ) -> httpx.Response:
        url = base_url(address, port) + path
        try:
            response = self._http.request(method, url, timeout=timeout, **kwargs)
        except httpx.TimeoutException:
            raise ApplianceError(f"{method} {url}: no answer within {timeout:.0f}s") from None
        except httpx.HTTPError as exc:
            raise ApplianceError(f"{method} {url}: {exc.__class__.__name__}: {exc}") from None
        if response.status_code == 422:
            detail = _json(response).get("detail")
            paths = _paths(detail)
            raise ApplianceConfigRejected(f"{method} {url}: 422 invalid: {', '.join(paths)}", paths)
        if response.status_code >= 400:
            raise ApplianceError(
                f"{method} {url}: HTTP {response.status_code}: {response.text[:300]}"
            )
        return response

    def is_alive(self, address: str, port: int) -> bool:
        connection = http.client.HTTPConnection(address.strip("[]"), port, self.alive_timeout)
        try:
            # "Connection: close" lets the appliance close first, so the TIME_WAIT of thousands
            # of checks per sweep stays on the appliances, not on the orchestrator's ports.
            connection.request(
                "GET",
                "/v1/status/",
                headers={"Accept": "application/json", "Connection": "close"},
            )
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            LOG.debug("appliance at %s is not alive: %s", address, exc)
            return False
        finally:
            connection.close()
        if response.status != 200:
            LOG.debug("appliance at %s is not alive: HTTP %d", address, response.status)
        return response.status == 200

    def get_config(self, address: str, port: int) -> Mapping[str, Any]:
        return _json(self._call("GET", address, port, "/v1/system/config", self.alive_timeout))

    def put_config(self, address: str, port: int, document: Mapping[str, Any]) -> None:
        self._call(
            "PUT", address, port, "/v1/system/config/", self.config_timeout, json=dict(document)
        )

    def get_interfaces(self, address: str, port: int) -> list[Mapping[str, Any]]:
        body = _json(self._call("GET", address, port, "/v1/system/interfaces", self.alive_timeout))
        interfaces = body.get("interfaces")
        if not isinstance(interfaces, list):
            raise ApplianceError(f"appliance at {address}: interfaces answer has no list")
        return interfaces

    def get_stats(self, address: str, port: int) -> Mapping[str, Any]:
        body = _json(self._call("GET", address, port, "/v1/system/stats", self.alive_timeout))
        counters = body.get("interfaces", body)
        return counters if isinstance(counters, Mapping) else {}


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise ApplianceError(
            f"{response.request.method} {response.request.url}: answer is not JSON"
        ) from None
    return body if isinstance(body, dict) else {"value": body}

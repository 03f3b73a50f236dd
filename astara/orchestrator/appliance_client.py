"""The appliance REST API (DESIGN §5, seed §1.3.2) over HTTPS, as an ApplianceClient.

- ``GET /v1/status/``: aliveness (any 200 within ``alive_timeout``) and whether the
  appliance's default gateways answer its pings (``{"v4": true, "v6": false}``);
- ``GET /v1/system/interfaces``: NICs by MAC, to detect needed replugs;
- ``GET|PUT /v1/system/config``: the configuration document (PUT waits ``config_timeout``);
  a 422 becomes :class:`ApplianceConfigRejected` naming every bad field's path;
- ``PUT /v1/system/config/floating_ips/`` with ``If-Match``: a document that differs from the
  one the appliance last acknowledged (by its ETag) in its floating IPs only sends those
  alone; a 412 (someone else changed the appliance meanwhile) or any other doubt falls back
  to the full PUT;
- ``GET /v1/system/stats``: per-interface traffic counters.

IPv6 management addresses are bracketed in URLs. Proxy variables in the environment are
ignored: appliances are only reached directly on the management network.

Mutual TLS (``[appliance_tls]``, :mod:`astara.providers.appliance_tls`): with an
``ssl.SSLContext`` every call is HTTPS, presents the orchestrator's client certificate and
verifies the appliance's certificate (its management address in the SAN) against the CA. The
context is built once and shared by httpx and the aliveness check. Without one (the explicit
``plain_http`` opt-out) it is plain HTTP, logged at WARNING once per appliance.

The aliveness check is the hot path (every router, every ``health_check_period``): it sends one
fixed ``GET /v1/status/`` with ``Connection: close`` on a socket (TLS-wrapped with the shared
context) and reads the short answer until the appliance closes, about five times cheaper in CPU
than httpx and half of ``http.client`` (measured here); everything else uses httpx.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import socket
import ssl
import threading
from collections.abc import Mapping
from typing import Any, NamedTuple

import httpx

from astara.core.interfaces import ApplianceConfigRejected, ApplianceError, GatewayReach

LOG = logging.getLogger(__name__)


def base_url(address: str, port: int, scheme: str = "http") -> str:
    """``http://[v6]:port`` or ``http://v4:port`` (a name is used as it is)."""
    host = address.strip("[]")
    try:
        if ipaddress.ip_address(host.split("%")[0]).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass
    return f"{scheme}://{host}:{port}"


def _paths(detail: Any) -> list[str]:
    """Dotted paths of the bad fields in a 422 body (``body`` prefix dropped)."""
    if not isinstance(detail, list):
        return [str(detail)]
    paths = []
    for error in detail:
        loc = [str(p) for p in (error.get("loc") or []) if p != "body"]
        paths.append(".".join(loc) or "body")
    return paths


class _Pushed(NamedTuple):
    """What an appliance last acknowledged: a digest of the document without its floating
    IPs, and the ETag it answered (~100 bytes per appliance, not the document)."""

    rest: bytes
    etag: str


def _rest_digest(document: Mapping[str, Any]) -> bytes | None:
    """A digest of ``document`` without ``configuration.floating_ips`` (None: not a document
    this can take apart, so always the full PUT)."""
    conf = document.get("configuration")
    if not isinstance(conf, Mapping):
        return None
    rest = {**document, "configuration": {k: v for k, v in conf.items() if k != "floating_ips"}}
    try:
        text = json.dumps(rest, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return None
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


class HttpApplianceClient:
    """Talks to appliances over HTTPS (``tls``) or plain HTTP (None: the logged opt-out); one
    connection pool shared by every worker thread."""

    def __init__(
        self,
        alive_timeout: float = 3.0,
        config_timeout: float = 90.0,
        max_connections: int = 100,
        *,
        tls: ssl.SSLContext | None,
    ) -> None:
        self.alive_timeout = alive_timeout
        self.config_timeout = config_timeout
        self.tls = tls
        self.scheme = "https" if tls is not None else "http"
        self._warned: set[str] = set()
        self._sessions: dict[str, ssl.SSLSession] = {}  # "host:port" -> last TLS session
        self._warned_lock = threading.Lock()
        self._pushed: dict[str, _Pushed] = {}  # "address:port" -> last acknowledged document
        self._pushed_lock = threading.Lock()
        self._http = httpx.Client(
            trust_env=False,
            verify=tls if tls is not None else False,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )

    @classmethod
    def from_conf(cls, conf: Any) -> HttpApplianceClient:
        """From the orchestrator's options; ConfigError for an unusable ``[appliance_tls]``."""
        from astara.providers.appliance_tls import ApplianceTLS

        settings = ApplianceTLS.from_conf(conf)
        return cls(
            alive_timeout=conf.alive_timeout,
            config_timeout=conf.config_timeout,
            tls=settings.client_context() if settings is not None else None,
        )

    def _plain_warning(self, address: str) -> None:
        if self.tls is not None or address in self._warned:
            return
        with self._warned_lock:
            if address in self._warned:
                return
            self._warned.add(address)
        LOG.warning(
            "appliance at %s: plain HTTP (mutual TLS turned off by [appliance_tls] plain_http)",
            address,
        )

    def close(self) -> None:
        self._http.close()

    def _call(
        self, method: str, address: str, port: int, path: str, timeout: float, **kwargs: Any
    ) -> httpx.Response:
        self._plain_warning(address)
        url = base_url(address, port, self.scheme) + path
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

    def status(self, address: str, port: int) -> GatewayReach | None:
        self._plain_warning(address)
        host = address.strip("[]")
        try:
            if self.tls is None:
                answer = _status_answer(host, port, self.alive_timeout)
            else:
                answer = self._status_answer_tls(host, port)
        except OSError as exc:  # ssl.SSLError (a certificate refused) is an OSError too
            LOG.debug("appliance at %s is not alive: %s", address, exc)
            return None
        status_line, _, rest = answer.partition(b"\r\n")
        if status_line.split(b" ", 2)[1:2] != [b"200"]:
            LOG.debug("appliance at %s is not alive: %r", address, status_line[:80])
            return None
        return gateway_reach(rest.partition(b"\r\n\r\n")[2])

    def is_alive(self, address: str, port: int) -> bool:
        """Whether the API answers ``GET /v1/status/`` (:meth:`status` is not None)."""
        return self.status(address, port) is not None

    def _status_answer_tls(self, host: str, port: int) -> bytes:
        """The status answer over TLS, resuming the appliance's last TLS session if it has one
        (a resumed handshake costs client and appliance about 40% less CPU, measured here);
        an appliance that does not take it (rebuilt: a new key) gets a full handshake."""
        assert self.tls is not None
        key = f"{host}:{port}"
        if len(self._sessions) > MAX_SESSIONS:  # appliances gone long ago; the rest resume anew
            self._sessions.clear()
        with socket.create_connection((host, port), timeout=self.alive_timeout) as raw:
            # The appliance's certificate must name ``host``; a refused one is an SSLError.
            session = self._sessions.get(key)
            with self.tls.wrap_socket(raw, server_hostname=host, session=session) as sock:
                answer = _read_answer(sock, self.alive_timeout)
                if sock.session is not None:
                    self._sessions[key] = sock.session
        return answer

    def get_config(self, address: str, port: int) -> Mapping[str, Any]:
        return _json(self._call("GET", address, port, "/v1/system/config", self.alive_timeout))

    def put_config(self, address: str, port: int, document: Mapping[str, Any]) -> None:
        """Apply ``document``: through the floating-IP endpoint when only its floating IPs
        differ from the document this client last saw the appliance acknowledge, else (or when
        that endpoint answers anything but 200) as a whole."""
        key = f"{address}:{port}"
        rest = _rest_digest(document)
        with self._pushed_lock:  # forgotten until this PUT succeeds: a failure leaves doubt
            last = self._pushed.pop(key, None)
        etag = None
        if rest is not None and last is not None and last.rest == rest:
            etag = self._put_floating_ips(address, port, document, last.etag)
        if etag is None:
            response = self._call("PUT", address, port, "/v1/system/config/",
                                  self.config_timeout, json=dict(document))  # fmt: skip
            etag = response.headers.get("etag")
        if rest is not None and etag:
            with self._pushed_lock:
                if len(self._pushed) > MAX_SESSIONS:  # appliances gone long ago: forgotten
                    self._pushed.clear()
                self._pushed[key] = _Pushed(rest, etag)

    def _put_floating_ips(
        self, address: str, port: int, document: Mapping[str, Any], etag: str
    ) -> str | None:
        """PUT the floating IPs of ``document`` alone, If-Match ``etag``: the new ETag, or None
        if the appliance did not apply them (412: changed by someone else; any other error)."""
        fips = document["configuration"].get("floating_ips", [])
        try:
            response = self._call("PUT", address, port, "/v1/system/config/floating_ips/",
                                  self.config_timeout, json={"floating_ips": fips},
                                  headers={"If-Match": etag})  # fmt: skip
        except ApplianceError as exc:
            LOG.info("appliance at %s: floating IPs alone not applied (%s): the whole document",
                     address, exc)  # fmt: skip
            return None
        etag = response.headers.get("etag")
        return str(etag) if etag else None

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


MAX_SESSIONS = 20000  # TLS sessions (and pushed documents' digests) kept, one per appliance
STATUS_REQUEST = (
    b"GET /v1/status/ HTTP/1.1\r\nHost: appliance\r\nAccept: application/json\r\n"
    # The appliance closes first, so the TIME_WAIT of thousands of checks per sweep stays on
    # the appliances, not on the orchestrator's ports.
    b"Connection: close\r\n\r\n"
)


MAX_STATUS_ANSWER = 4096  # bytes: the status answer is about 200


def _status_answer(host: str, port: int, timeout: float) -> bytes:
    """The answer the appliance gives ``GET /v1/status/`` (plain HTTP)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        return _read_answer(sock, timeout)


def _read_answer(sock: socket.socket, timeout: float) -> bytes:
    """Send the status request, read the answer: its head and ``Content-Length`` bytes of body
    (or up to the close, at most :data:`MAX_STATUS_ANSWER` bytes); OSError if it is not HTTP."""
    sock.settimeout(timeout)
    sock.sendall(STATUS_REQUEST)
    answer = b""
    while len(answer) < MAX_STATUS_ANSWER and not _complete(answer):
        try:
            chunk = sock.recv(MAX_STATUS_ANSWER)
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            break  # closed (with or without TLS's close_notify): what came is the answer
        if not chunk:
            break
        answer += chunk
    if not answer.startswith(b"HTTP/"):
        raise ConnectionError(f"not an HTTP answer: {answer[:40]!r}")
    return answer


def _complete(answer: bytes) -> bool:
    """Whether ``answer`` holds its whole head and the body its ``Content-Length`` announces."""
    head, sep, body = answer.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return value.strip().isdigit() and len(body) >= int(value)
    return False  # no length: the body ends when the appliance closes


def gateway_reach(body: bytes) -> dict[str, bool]:
    """The families whose gateway the status ``body`` says answers (True) or not (False);
    null (no gateway), anything not a boolean, or a body that is not JSON says nothing."""
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, bool)}


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise ApplianceError(
            f"{response.request.method} {response.request.url}: answer is not JSON"
        ) from None
    return body if isinstance(body, dict) else {"value": body}

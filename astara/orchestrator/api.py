"""The management HTTP API (``astara-ctl`` talks to it): JSON, with its OpenAPI document.

:class:`ManagementServer` serves it on ``api_listen``:``api_port`` from a thread (uvicorn).
Routes are under ``/v1``; ``/router/...`` aliases ``/resources/...``, and the seed's paths
(``PUT /poll/``, ``PUT /workers/debug/``, ``PUT /router/rebuild/<id>``, ...) keep working.
When a token is set (``api_token``, ``$ASTARA_API_TOKEN`` or ``api_token_file``) every request
needs ``X-Auth-Token`` (or ``Authorization: Bearer``); without one the API refuses to start on
any address but loopback. ``POST /v1/resync`` resyncs now; with ``{"force": true}`` it deletes
what the resync guard held back.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import socket
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from oslo_config import cfg
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from astara.core.control import Control, ResourceView
from astara.core.settings import ConfigError
from astara.db.api import DebugStore
from astara.db.models import DebugScope
from astara.orchestrator.commands import (
    CommandResult,
    NotOwner,
    OperatorCommands,
    UnknownResource,
)
from astara.orchestrator.metrics import new_registry
from astara.orchestrator.settings import api_token

LOG = logging.getLogger(__name__)
START_TIMEOUT_S = 10.0
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "unknown resource"}}


class DebugRequest(BaseModel):
    reason: str = ""


class RebuildRequest(BaseModel):
    image: str | None = None


class ResyncRequest(BaseModel):
    force: bool = False


class DebugModeOut(BaseModel):
    scope: DebugScope
    target: str
    reason: str
    since: str


class ApiServerError(Exception):
    """The management API could not start; the message says why in one line."""


def build_app(conf: cfg.ConfigOpts, control: Control, store: DebugStore) -> FastAPI:
    """The management API's ASGI application."""
    commands = OperatorCommands(control, store)
    registry, requests = new_registry(control)
    token_header = APIKeyHeader(name="X-Auth-Token", auto_error=False)

    wanted = _token(conf)

    def check_token(request: Request, token: str | None = Depends(token_header)) -> None:
        if not wanted:
            return
        bearer = request.headers.get("Authorization", "")
        given = token or (bearer[7:] if bearer.startswith("Bearer ") else "")
        if not hmac.compare_digest(given.encode(), str(wanted).encode()):
            raise HTTPException(401, "missing or wrong X-Auth-Token")

    app = FastAPI(
        title="Astara management API",
        version="1",
        description="Inspect and steer the running astara-orchestrator.",
        dependencies=[Depends(check_token)],
    )

    @app.middleware("http")
    async def count_requests(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        requests.labels(request.method, path, str(response.status_code)).inc()
        return response

    @app.exception_handler(UnknownResource)
    def unknown(_request: Request, err: UnknownResource) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=404)

    @app.exception_handler(NotOwner)
    def not_owner(_request: Request, err: NotOwner) -> JSONResponse:
        return JSONResponse({"detail": str(err), "owner": err.owner}, status_code=409)

    @app.exception_handler(SQLAlchemyError)
    def database_down(_request: Request, err: SQLAlchemyError) -> JSONResponse:
        first = str(getattr(err, "orig", None) or err).splitlines()[0]
        return JSONResponse({"detail": f"debug-mode database: {first}"}, status_code=503)

    @app.get("/v1/health", tags=["status"])
    @app.get("/health", include_in_schema=False)
    def health() -> Mapping[str, Any]:
        return control.health()

    @app.get("/v1/cluster", tags=["status"])
    def cluster() -> Mapping[str, Any]:
        """This member, the live members and whether it acts (``{"enabled": false}`` when
        not clustered)."""
        return control.cluster_status()

    @app.get("/v1/cluster/owners/{resource_id}", tags=["status"])
    def owner(resource_id: str) -> Mapping[str, Any]:
        """Which member manages ``resource_id`` by the current ring (any id)."""
        return {"resource_id": resource_id, "owner": control.owner_of(resource_id)}

    @app.get("/metrics", tags=["status"], response_class=Response)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/resources", tags=["resources"])
    def list_resources() -> list[ResourceView]:
        return commands.resources()

    @app.get("/v1/resources/{resource_id}", tags=["resources"], responses=NOT_FOUND)
    @app.get("/v1/routers/{resource_id}", tags=["resources"], include_in_schema=False)
    def show_resource(resource_id: str) -> ResourceView:
        return commands.resource(resource_id)

    @app.post("/v1/poll", tags=["commands"])
    @app.put("/poll/", include_in_schema=False)
    def poll() -> CommandResult:
        return commands.poll()

    @app.post("/v1/workers/debug", tags=["commands"])
    @app.put("/workers/debug/", include_in_schema=False)
    def workers_debug() -> Mapping[str, Any]:
        return control.workers_report()

    @app.post("/v1/config/reload", tags=["commands"])
    def reload_config() -> CommandResult:
        control.reload_config()
        return CommandResult("config reload", "*", 0)

    @app.post("/v1/resync", tags=["commands"])
    def resync(body: ResyncRequest | None = None) -> Mapping[str, Any]:
        force = (body or ResyncRequest()).force
        if force:
            LOG.warning("operator forced a resync: deletes the guard would hold back go ahead")
        return control.request_resync(force)

    @app.get("/v1/debug", tags=["debug"])
    def debug_modes() -> list[DebugModeOut]:
        return [
            DebugModeOut(scope=e.scope, target=e.target, reason=e.reason, since=e.since.isoformat())
            for e in commands.debug_modes()
        ]

    @app.post("/v1/global/debug/enable", tags=["debug"])
    def global_debug_enable(body: DebugRequest | None = None) -> CommandResult:
        return commands.debug_global((body or DebugRequest()).reason)

    @app.post("/v1/global/debug/disable", tags=["debug"])
    def global_debug_disable() -> CommandResult:
        return commands.manage_global()

    @app.post("/v1/tenants/{tenant_id}/debug", tags=["debug"])
    def tenant_debug(tenant_id: str, body: DebugRequest | None = None) -> CommandResult:
        return commands.debug_tenant(tenant_id, (body or DebugRequest()).reason)

    @app.post("/v1/tenants/{tenant_id}/manage", tags=["debug"])
    def tenant_manage(tenant_id: str) -> CommandResult:
        return commands.manage_tenant(tenant_id)

    app.include_router(_resource_commands(commands, "/v1/resources"))
    app.include_router(_resource_commands(commands, "/v1/routers"), include_in_schema=False)
    app.include_router(_seed_paths(commands), include_in_schema=False)
    return app


def _resource_commands(commands: OperatorCommands, prefix: str) -> APIRouter:
    router = APIRouter(prefix=prefix, tags=["commands"], responses=NOT_FOUND)

    @router.post("/{resource_id}/rebuild")
    def rebuild(resource_id: str, body: RebuildRequest | None = None) -> CommandResult:
        return commands.rebuild(resource_id, (body or RebuildRequest()).image)

    @router.post("/{resource_id}/update")
    def update(resource_id: str) -> CommandResult:
        return commands.update(resource_id)

    @router.post("/{resource_id}/debug")
    def debug(resource_id: str, body: DebugRequest | None = None) -> CommandResult:
        return commands.debug_resource(resource_id, (body or DebugRequest()).reason)

    @router.post("/{resource_id}/manage")
    def manage(resource_id: str) -> CommandResult:
        return commands.manage_resource(resource_id)

    return router


def _seed_paths(commands: OperatorCommands) -> APIRouter:
    """The 2016 API: ``PUT /<kind>/<command>/<id>``."""
    router = APIRouter()
    router.put("/router/rebuild/{resource_id}")(lambda resource_id: commands.rebuild(resource_id))
    router.put("/router/update/{resource_id}")(commands.update)
    router.put("/router/debug/{resource_id}")(
        lambda resource_id: commands.debug_resource(resource_id, "")
    )
    router.put("/router/manage/{resource_id}")(commands.manage_resource)
    router.put("/tenant/debug/{tenant_id}")(lambda tenant_id: commands.debug_tenant(tenant_id, ""))
    router.put("/tenant/manage/{tenant_id}")(commands.manage_tenant)
    return router


class ManagementServer:
    """Serves the management API on ``api_listen``:``api_port`` from a background thread.

    Made only with a token when ``api_listen`` is not loopback (ApiServerError otherwise)."""

    def __init__(
        self, conf: cfg.ConfigOpts, control: Control, store: DebugStore | None = None
    ) -> None:
        _require_token_off_loopback(conf)
        self._conf = conf
        self.app = build_app(conf, control, store or DebugStore.from_conf(conf))
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        """The API's base URL (``api_port`` 0 picks a free port; this tells which)."""
        if self._socket is None:
            raise RuntimeError("the management API is not started")
        host, port = self._socket.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> None:
        """Listen, then serve in a thread; ApiServerError if the address cannot be used."""
        self._socket = _listen(self._conf.api_listen, self._conf.api_port)
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        server = self._server = uvicorn.Server(config)
        sockets = [self._socket]
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=sockets)),
            name="astara-management-api",
            daemon=True,
        )
        self._thread.start()
        for _ in range(int(START_TIMEOUT_S / 0.02)):
            if server.started or not self._thread.is_alive():
                break
            threading.Event().wait(0.02)
        if not server.started:
            self.stop()
            raise ApiServerError(f"the management API did not start on {self.url}")
        LOG.info("management API listening on %s", self.url)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=START_TIMEOUT_S)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = None


def _token(conf: cfg.ConfigOpts) -> str | None:
    try:
        return api_token(conf)
    except ConfigError as err:
        raise ApiServerError(str(err)) from None


def _require_token_off_loopback(conf: cfg.ConfigOpts) -> None:
    try:
        loopback = ipaddress.ip_address(conf.api_listen).is_loopback
    except ValueError:
        return  # not an address: _listen says so
    if not loopback and not _token(conf):
        raise ApiServerError(
            f"refusing to serve the management API on {conf.api_listen} without a token: set "
            "api_token_file (or ASTARA_API_TOKEN, or api_token), or api_listen = ::1"
        )


def _listen(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST | socket.AI_PASSIVE
        )[0]
    except socket.gaierror:
        raise ApiServerError(f"api_listen must be an IP address, not {host!r}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as err:
        sock.close()
        raise ApiServerError(f"cannot listen on [{host}]:{port}: {err.strerror}") from None
    return sock

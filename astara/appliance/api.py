"""The appliance REST API (seed paths, JSON everywhere, OpenAPI at ``/openapi.json``).

:class:`ApplianceAPI` routes a :class:`~astara.appliance.httpserver.Request` to its handler; it
runs in the connection's thread (:mod:`astara.appliance.httpserver`), so a handler may block (an
apply holds the appliance's lock). Every path answers with and without its trailing slash.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from astara.appliance import health, links, netops
from astara.appliance.apply import Appliance, ApplyError, PreconditionFailed, ResolveError
from astara.appliance.httpserver import Request, Response, error, json_response
from astara.configdoc import Document, ValidationError, document_errors, document_json

LOG = logging.getLogger(__name__)

JSON = "application/json"
JSON_TYPES = (JSON,)

Handler = Callable[[Request], Response]


def _not_json(request: Request) -> Response | None:
    """The 415 for a body that is not declared application/json, else None."""
    ctype = request.media_type()
    if ctype in JSON_TYPES:
        return None
    return error(415, f"Content-Type must be application/json, not {ctype or 'none'!r}")


def _invalid_json(exc: Exception) -> Response:
    return error(422, [{"loc": ["body"], "msg": f"invalid JSON: {exc}", "type": "json_invalid"}])


def _invalid(exc: ValidationError, under: list[str | int]) -> Response:
    """The 422 of a document's errors; their paths under ``under``."""
    errors = document_errors(exc)
    for e in errors:
        e["loc"] = [*under, *e["loc"]]
    return error(422, errors)


def _apply_failed(exc: ApplyError) -> Response:
    return error(500, {"step": exc.step, "reason": exc.reason, "rolled_back": True})


# The route table: (path, method, handler's name), each path as the seed published it; each
# answers with and without its trailing slash. ``{name}`` is a path parameter, passed to the
# handler. The published OpenAPI document is made from it (:mod:`astara.appliance.openapi`).
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("/v1/status/", "GET", "status"),
    ("/v1/firewall/rules/", "GET", "rules"),
    ("/v1/system/interfaces", "GET", "interfaces"),
    ("/v1/system/interface/{ifname}/", "GET", "interface"),
    ("/v1/system/stats", "GET", "stats"),
    ("/v1/system/config", "GET", "get_config"),
    ("/v1/system/config/", "PUT", "put_config"),
    ("/v1/system/config/floating_ips/", "PUT", "put_floating_ips"),
)


def _pattern(path: str) -> re.Pattern[str]:
    """A templated path as a regular expression (each ``{name}`` one segment)."""
    return re.compile(re.sub(r"\\\{\w+\\\}", "([^/]+)", re.escape(path.rstrip("/"))) + "/?")


class ApplianceAPI:
    """The API of one appliance: a callable from request to response."""

    def __init__(self, appliance: Appliance) -> None:
        self.appliance = appliance
        self.gateways = health.GatewayStatus()
        self._openapi: str | None = None
        self.routes: dict[str, dict[str, Handler]] = {}
        self.templated: list[tuple[re.Pattern[str], dict[str, Any]]] = []
        for path, method, name in ROUTES:
            if "{" in path:
                self.templated.append((_pattern(path), {method: getattr(self, name)}))
                continue
            for variant in (path.rstrip("/"), path.rstrip("/") + "/"):
                self.routes.setdefault(variant, {})[method] = getattr(self, name)
        self.routes["/openapi.json"] = {"GET": self.openapi}

    def __call__(self, request: Request) -> Response:
        methods = self.routes.get(request.path)
        for pattern, handlers in self.templated if methods is None else ():
            if found := pattern.fullmatch(request.path):
                methods = {m: functools.partial(h, *found.groups()) for m, h in handlers.items()}
                break
        if methods is None:
            return error(404, "Not Found")
        handler = methods.get("GET" if request.method == "HEAD" else request.method)
        if handler is None:
            return error(405, "Method Not Allowed", {"Allow": ", ".join(sorted(methods))})
        try:
            return handler(request)
        except links.UnclaimedBox as exc:
            return error(503, str(exc))

    # -- reading ------------------------------------------------------------------------------
    def status(self, request: Request) -> Response:
        """Can the router reach its default gateways?"""
        return json_response(200, self.gateways.get())

    def rules(self, request: Request) -> Response:
        """The live nftables ruleset, as text."""
        return json_response(200, {"ruleset": netops.nft_ruleset()})

    def _described(self) -> list[dict[str, Any]]:
        appliance = self.appliance
        with appliance.lock:
            nics = links.sync_names(appliance.state)
            groups = {}
            if appliance.current is not None:
                groups = {(n.interface.lladdr or "").lower(): list(n.interface.groups)
                          for n in appliance.current.configuration.networks}  # fmt: skip
            return links.describe(nics, groups)

    def interfaces(self, request: Request) -> Response:
        """Every NIC, in the seed's format."""
        return json_response(200, {"interfaces": self._described()})

    def interface(self, ifname: str, request: Request) -> Response:
        """One NIC, by name."""
        found = [i for i in self._described() if i["ifname"] == ifname]
        if not found:
            return error(404, f"no interface named {ifname!r}")
        return json_response(200, {"interface": found[0]})

    def stats(self, request: Request) -> Response:
        """Per-interface traffic counters."""
        return json_response(200, {"interfaces": links.counters()})

    def get_config(self, request: Request) -> Response:
        """The configuration document the router runs."""
        with self.appliance.lock:
            doc, etag = self.appliance.current or Document(), self.appliance.etag
        return Response(200, document_json(doc), {"ETag": etag})

    def openapi(self, request: Request) -> Response:
        if self._openapi is None:
            from astara.appliance.openapi import openapi_json

            self._openapi = openapi_json()
        return Response(200, self._openapi)

    # -- changing -----------------------------------------------------------------------------
    def put_config(self, request: Request) -> Response:
        """Apply a configuration document as a whole."""
        if (refused := _not_json(request)) is not None:
            return refused
        appliance = self.appliance
        with appliance.lock:
            try:
                doc, changed = appliance.put_body(request.body)
            except ValidationError as exc:
                return _invalid(exc, ["body"])
            except ResolveError as exc:
                return error(422, exc.errors)
            except (ValueError, RecursionError) as exc:  # not JSON, or nested too deep
                return _invalid_json(exc)
            except ApplyError as exc:
                return _apply_failed(exc)
            etag = appliance.etag
        head = json.dumps({"status": "applied" if changed else "unchanged", "changed": changed})
        body = head[:-1] + ', "config": ' + document_json(doc) + "}"
        # Once the answer is sent: free the previous document, read the NICs for the next apply.
        return Response(200, body, {"ETag": etag}, after=appliance.release)

    def put_floating_ips(self, request: Request) -> Response:
        """Replace the floating IPs of the running document (the rest stays)."""
        if (refused := _not_json(request)) is not None:
            return refused
        try:
            data = json.loads(request.body)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            return _invalid_json(exc)
        if not isinstance(data, dict) or set(data) != {"floating_ips"}:
            return error(422, [{"loc": ["body"], "msg": "an object with 'floating_ips' only",
                                "type": "model_type"}])  # fmt: skip
        try:
            _doc, changed, etag = self.appliance.put_floating_ips(
                data["floating_ips"], request.headers.get("if-match")
            )
        except PreconditionFailed as exc:
            return error(412, "If-Match is not the ETag of the running document",
                         {"ETag": exc.args[0]})  # fmt: skip
        except ValidationError as exc:
            return _fip_errors(exc)
        except ResolveError as exc:
            return error(422, exc.errors)
        except ApplyError as exc:
            return _apply_failed(exc)
        body = {"status": "applied" if changed else "unchanged", "changed": changed}
        answer = json_response(200, body, {"ETag": etag})
        answer.after = self.appliance.release
        return answer


def _fip_errors(exc: ValidationError) -> Response:
    """The 422 of the floating-IP endpoint: ``configuration.floating_ips...`` errors are
    reported as ``body.floating_ips...`` (the body holds the floating IPs alone)."""
    errors = document_errors(exc)
    for e in errors:
        loc = e["loc"]
        e["loc"] = ["body", *(loc[1:] if loc[:1] == ["configuration"] else loc)]
    return error(422, errors)

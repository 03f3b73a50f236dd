"""The appliance REST API (seed paths, JSON everywhere, OpenAPI at ``/openapi.json``)."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from astara.appliance import health, links, netops
from astara.appliance.apply import Appliance, ApplyError, PreconditionFailed, ResolveError
from astara.configdoc import Document, FloatingIP, document_errors, document_json

LOG = logging.getLogger(__name__)

JSON = "application/json"
JSON_TYPES = (JSON,)


def _error(status: int, detail: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail})


def _not_json(request: Request) -> JSONResponse | None:
    """The 415 for a body that is not declared application/json, else None."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in JSON_TYPES:
        return None
    return _error(415, f"Content-Type must be application/json, not {ctype or 'none'!r}")


def _groups(appliance: Appliance) -> dict[str, list[str]]:
    if appliance.current is None:
        return {}
    return {
        (n.interface.lladdr or "").lower(): list(n.interface.groups)
        for n in appliance.current.configuration.networks
    }


def create_app(appliance: Appliance) -> FastAPI:
    app = FastAPI(title="Astara appliance API", version="1", docs_url=None, redoc_url=None)
    gateways = health.GatewayStatus()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [
            {
                "loc": list(e.get("loc", ())),
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        return _error(422, detail)

    @app.exception_handler(links.UnclaimedBox)
    async def _unclaimed(request: Request, exc: links.UnclaimedBox) -> JSONResponse:
        return _error(503, str(exc))

    @app.get("/v1/status/", summary="Can the router reach its default gateways?")
    @app.get("/v1/status", include_in_schema=False)
    def status() -> dict[str, bool]:  # a probe thread; this one waits for it, at most 1 s
        return gateways.get()

    @app.get("/v1/firewall/rules/", summary="The live nftables ruleset, as text")
    @app.get("/v1/firewall/rules", include_in_schema=False)
    def rules() -> dict[str, str]:
        return {"ruleset": netops.nft_ruleset()}

    @app.get("/v1/system/interfaces", summary="Every NIC, in the seed's format")
    @app.get("/v1/system/interfaces/", include_in_schema=False)
    def interfaces() -> dict[str, list[dict[str, Any]]]:
        with appliance.lock:
            nics = links.sync_names(appliance.state)
            return {"interfaces": links.describe(nics, _groups(appliance))}

    @app.get(
        "/v1/system/interface/{ifname}/",
        summary="One NIC, by name",
        responses={404: {"description": "no such interface"}},
    )
    @app.get("/v1/system/interface/{ifname}", include_in_schema=False)
    def interface(ifname: str) -> Any:
        with appliance.lock:
            described = links.describe(links.sync_names(appliance.state), _groups(appliance))
        found = [i for i in described if i["ifname"] == ifname]
        if not found:
            return _error(404, f"no interface named {ifname!r}")
        return {"interface": found[0]}

    @app.get("/v1/system/stats", summary="Per-interface traffic counters")
    @app.get("/v1/system/stats/", include_in_schema=False)
    def stats() -> dict[str, Any]:
        return {"interfaces": links.counters()}

    @app.get(
        "/v1/system/config",
        summary="The configuration document the router runs",
        response_model=dict[str, Any],
    )
    @app.get("/v1/system/config/", include_in_schema=False)
    def get_config() -> Any:
        with appliance.lock:
            doc, etag = appliance.current or Document(), appliance.etag
        return Response(document_json(doc), media_type=JSON, headers={"ETag": etag})

    put_doc = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Document"}}},
        },
        "responses": {
            "415": {"description": "the body is not application/json"},
            "422": {"description": "invalid document: every bad field, by path"},
            "500": {"description": "a step failed; the previous configuration was restored"},
        },
    }

    @app.put(
        "/v1/system/config/",
        summary="Apply a configuration document as a whole",
        openapi_extra=put_doc,
    )
    @app.put("/v1/system/config", include_in_schema=False)
    async def put_config(request: Request) -> Any:
        if (refused := _not_json(request)) is not None:
            return refused
        raw = await request.body()

        def put() -> tuple[Document, list[str], str] | Exception:
            with appliance.lock:
                try:  # in this thread, not the event loop: 700 KB take milliseconds
                    data = appliance.parse_body(raw)
                except (ValueError, UnicodeDecodeError) as exc:
                    return exc
                doc, changed = appliance.put(data, raw)
                return doc, changed, appliance.etag

        try:
            outcome = await run_in_threadpool(put)
            if isinstance(outcome, Exception):
                return _error(422, [{"loc": ["body"], "msg": f"invalid JSON: {outcome}",
                                     "type": "json_invalid"}])  # fmt: skip
            doc, changed, etag = outcome
        except ValidationError as exc:
            errors = document_errors(exc)
            for e in errors:
                e["loc"] = ["body", *e["loc"]]
            return _error(422, errors)
        except ResolveError as exc:
            return _error(422, exc.errors)
        except ApplyError as exc:
            return _error(500, {"step": exc.step, "reason": exc.reason, "rolled_back": True})
        # The document serialized by pydantic (Rust): FastAPI's jsonable_encoder walks a dict
        # of 5,000 hosts in Python for longer than applying a floating IP takes.
        head = json.dumps({"status": "applied" if changed else "unchanged", "changed": changed})
        body = head[:-1] + ', "config": ' + document_json(doc) + "}"
        # Once the answer is sent: free the previous document, read the NICs for the next apply.
        return Response(body, media_type=JSON, headers={"ETag": etag},
                        background=BackgroundTask(appliance.release))  # fmt: skip

    fips_doc = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {
                "type": "object", "required": ["floating_ips"], "additionalProperties": False,
                "properties": {"floating_ips": {
                    "type": "array", "items": {"$ref": "#/components/schemas/FloatingIP"}}},
            }}},
        },
        "parameters": [{
            "name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
            "description": "the ETag of the document the change is meant for (412 if the box "
                           "runs another one)",
        }],
        "responses": {
            "412": {"description": "If-Match is not the ETag of the document the box runs"},
            "415": {"description": "the body is not application/json"},
            "422": {"description": "invalid floating IPs: every bad field, by path"},
            "500": {"description": "a step failed; the previous configuration was restored"},
        },
    }  # fmt: skip

    @app.put(
        "/v1/system/config/floating_ips/",
        summary="Replace the floating IPs of the running document (the rest stays)",
        openapi_extra=fips_doc,
    )
    @app.put("/v1/system/config/floating_ips", include_in_schema=False)
    async def put_floating_ips(request: Request) -> Any:
        if (refused := _not_json(request)) is not None:
            return refused
        try:
            data = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as exc:
            return _error(
                422, [{"loc": ["body"], "msg": f"invalid JSON: {exc}", "type": "json_invalid"}]
            )
        if not isinstance(data, dict) or set(data) != {"floating_ips"}:
            return _error(422, [{"loc": ["body"], "msg": "an object with 'floating_ips' only",
                                 "type": "model_type"}])  # fmt: skip
        try:
            _doc, changed, etag = await run_in_threadpool(
                appliance.put_floating_ips, data["floating_ips"], request.headers.get("if-match")
            )
        except PreconditionFailed as exc:
            return JSONResponse(
                status_code=412,
                content={"detail": "If-Match is not the ETag of the running document"},
                headers={"ETag": exc.args[0]},
            )
        except ValidationError as exc:
            errors = document_errors(exc)
            for e in errors:  # configuration.floating_ips... -> body.floating_ips...
                e["loc"] = ["body", *e["loc"][1:]] if e["loc"][:1] == ["configuration"] else [
                    "body", *e["loc"]]  # fmt: skip
            return _error(422, errors)
        except ResolveError as exc:
            return _error(422, exc.errors)
        except ApplyError as exc:
            return _error(500, {"step": exc.step, "reason": exc.reason, "rolled_back": True})
        body = {"status": "applied" if changed else "unchanged", "changed": changed}
        return JSONResponse(body, headers={"ETag": etag})

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            doc_schema = Document.model_json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(doc_schema.pop("$defs", {}))
            components["Document"] = doc_schema
            components.setdefault("FloatingIP", FloatingIP.model_json_schema())
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def openapi_json() -> str:
    """The OpenAPI document, as ``docs/appliance-openapi.json`` holds it."""
    import tempfile

    from astara.appliance.state import StateDir

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Appliance(StateDir(tmp)))
        return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"


if (
    __name__ == "__main__"
):  # regenerate: python -m astara.appliance.api > docs/appliance-openapi.json
    print(openapi_json(), end="")

"""The appliance API's OpenAPI 3.1 document: served at ``GET /openapi.json``, published as
``docs/appliance-openapi.json``. Generated, not written: the paths from the API's route table
(:data:`astara.appliance.api.ROUTES`, each summary the handler's docstring) with a little
metadata per route (the answer's type, the request body's model, the other answers), and every
schema by msgspec from the models (:func:`astara.configdoc.json_schema`) and the types below,
so they say exactly what the API validates. Regenerate the published copy with
``python -m astara.appliance.openapi > docs/appliance-openapi.json``.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import msgspec

from astara.appliance.api import ROUTES, ApplianceAPI
from astara.configdoc import json_schema

_REF = "#/components/schemas/{name}"
_STEP_FAILED = {"description": "a step failed; the previous configuration was restored"}
_NOT_JSON = {"description": "the body is not application/json"}


class ValidationError(msgspec.Struct):
    """One error of a 422 answer."""

    loc: Annotated[list[str | int], msgspec.Meta(title="Location")]
    msg: Annotated[str, msgspec.Meta(title="Message")]
    type: Annotated[str, msgspec.Meta(title="Error Type")]
    input: Annotated[Any, msgspec.Meta(title="Input")] = None
    ctx: Annotated[dict[str, Any], msgspec.Meta(title="Context")] = {}


class HTTPValidationError(msgspec.Struct):
    """The 422 body of a bad request (``{"detail": [{"loc", "msg", "type"}, ...]}``)."""

    detail: Annotated[list[ValidationError], msgspec.Meta(title="Detail")] = []


def _body(name: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": _REF.format(name=name)}}}}


_CHANGES = {"415": _NOT_JSON, "500": _STEP_FAILED}
# per route (the handler's name): the 200 answer's type, and what else the operation has
META: dict[str, dict[str, Any]] = {
    "status": {"answer": dict[str, bool | None]},
    "rules": {"answer": dict[str, str]},
    "interfaces": {"answer": dict[str, list[dict[str, Any]]]},
    "interface": {"answer": Any, "responses": {
        "404": {"description": "no such interface"},
        "422": {"description": "Validation Error", **_body("HTTPValidationError")}}},
    "stats": {"answer": dict[str, Any]},
    "get_config": {"answer": dict[str, Any]},
    "put_config": {"answer": Any, "body": "Document", "responses": {
        **_CHANGES, "422": {"description": "invalid document: every bad field, by path"}}},
    "put_floating_ips": {"answer": Any, "body": "FloatingIPs", "if_match": True, "responses": {
        **_CHANGES, "412": {"description": "If-Match is not the ETag of the document the box runs"},
        "422": {"description": "invalid floating IPs: every bad field, by path"}}},
}  # fmt: skip
_IF_MATCH = {
    "description": "the ETag of the document the change is meant for (412 if the box runs "
    "another one)",
    "in": "header",
    "name": "If-Match",
    "required": False,
    "schema": {"type": "string"},
}


def _operation(path: str, method: str, name: str) -> dict[str, Any]:
    meta = META[name]
    operation_id = re.sub(r"\W", "_", name + path) + "_" + method.lower()
    title = "Response " + operation_id.replace("_", " ").title()
    answer = msgspec.json.schema(meta["answer"]) if meta["answer"] is not Any else {}
    doc = getattr(ApplianceAPI, name).__doc__ or ""
    out: dict[str, Any] = {
        "operationId": operation_id,
        "summary": doc.strip().splitlines()[0].rstrip("."),
    }
    parameters = [{"in": "path", "name": p, "required": True,
                   "schema": {"title": p.title(), "type": "string"}}
                  for p in re.findall(r"\{(\w+)\}", path)]  # fmt: skip
    if meta.get("if_match"):
        parameters.append(_IF_MATCH)
    if parameters:
        out["parameters"] = parameters
    if "body" in meta:
        out["requestBody"] = {"required": True, **_body(meta["body"])}
    ok = {"description": "Successful Response",
          "content": {"application/json": {"schema": {**answer, "title": title}}}}  # fmt: skip
    out["responses"] = {"200": ok, **meta.get("responses", {})}
    return out


def paths() -> dict[str, Any]:
    """Every operation of the route table (each path also answers without its trailing slash)."""
    found: dict[str, Any] = {}
    for path, method, name in ROUTES:
        found.setdefault(path, {})[method.lower()] = _operation(path, method, name)
    return found


def document() -> dict[str, Any]:
    """The whole OpenAPI document."""
    _refs, errors = msgspec.json.schema_components([HTTPValidationError], ref_template=_REF)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Astara appliance API", "version": "1"},
        "paths": paths(),
        "components": {"schemas": {**json_schema(), **errors}},
    }


def openapi_json() -> str:
    """The OpenAPI document as ``docs/appliance-openapi.json`` holds it."""
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # regenerate: python -m astara.appliance.openapi > docs/...
    print(openapi_json(), end="")

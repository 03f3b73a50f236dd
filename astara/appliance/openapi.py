"""The appliance API's OpenAPI 3.1 document: served at ``GET /openapi.json``, published as
``docs/appliance-openapi.json``.

The paths are written here, as the API had them published; the schemas of the configuration
document come from its models (:func:`astara.configdoc.json_schema`), so they say exactly what
the API validates. Regenerate the published copy with
``python -m astara.appliance.openapi > docs/appliance-openapi.json``.
"""

from __future__ import annotations

import json
from typing import Any

from astara.configdoc import json_schema

_STEP_FAILED = {"description": "a step failed; the previous configuration was restored"}
_NOT_JSON = {"description": "the body is not application/json"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _ok(schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": "Successful Response", **_json(schema)}


def _map_of(values: dict[str, Any] | bool) -> dict[str, Any]:
    return {"additionalProperties": values, "type": "object"}


def _get(operation_id: str, summary: str, answer: dict[str, Any], title: str) -> dict[str, Any]:
    return {"get": {"operationId": operation_id, "summary": summary,
                    "responses": {"200": _ok({**answer, "title": title})}}}  # fmt: skip


def paths() -> dict[str, Any]:
    """Every operation: the seed's paths (each also answers without/with its trailing slash)."""
    if_match = {
        "description": "the ETag of the document the change is meant for (412 if the box "
                       "runs another one)",
        "in": "header", "name": "If-Match", "required": False, "schema": {"type": "string"},
    }  # fmt: skip
    floating_ips_body = {
        "additionalProperties": False, "required": ["floating_ips"], "type": "object",
        "properties": {"floating_ips": {"items": {"$ref": "#/components/schemas/FloatingIP"},
                                        "type": "array"}},
    }  # fmt: skip
    return {
        "/v1/status/": _get(
            "status_v1_status__get", "Can the router reach its default gateways?",
            _map_of({"type": "boolean"}), "Response Status V1 Status  Get"),
        "/v1/firewall/rules/": _get(
            "rules_v1_firewall_rules__get", "The live nftables ruleset, as text",
            _map_of({"type": "string"}), "Response Rules V1 Firewall Rules  Get"),
        "/v1/system/interfaces": _get(
            "interfaces_v1_system_interfaces_get", "Every NIC, in the seed's format",
            _map_of({"items": _map_of(True), "type": "array"}),
            "Response Interfaces V1 System Interfaces Get"),
        "/v1/system/interface/{ifname}/": {"get": {
            "operationId": "interface_v1_system_interface__ifname___get",
            "summary": "One NIC, by name",
            "parameters": [{"in": "path", "name": "ifname", "required": True,
                            "schema": {"title": "Ifname", "type": "string"}}],
            "responses": {
                "200": _ok({"title": "Response Interface V1 System Interface  Ifname   Get"}),
                "404": {"description": "no such interface"},
                "422": {"description": "Validation Error",
                        **_json({"$ref": "#/components/schemas/HTTPValidationError"})},
            },
        }},
        "/v1/system/stats": _get(
            "stats_v1_system_stats_get", "Per-interface traffic counters", _map_of(True),
            "Response Stats V1 System Stats Get"),
        "/v1/system/config": _get(
            "get_config_v1_system_config_get", "The configuration document the router runs",
            _map_of(True), "Response Get Config V1 System Config Get"),
        "/v1/system/config/": {"put": {
            "operationId": "put_config_v1_system_config__put",
            "summary": "Apply a configuration document as a whole",
            "requestBody": {"required": True,
                            **_json({"$ref": "#/components/schemas/Document"})},
            "responses": {
                "200": _ok({"title": "Response Put Config V1 System Config  Put"}),
                "415": _NOT_JSON,
                "422": {"description": "invalid document: every bad field, by path"},
                "500": _STEP_FAILED,
            },
        }},
        "/v1/system/config/floating_ips/": {"put": {
            "operationId": "put_floating_ips_v1_system_config_floating_ips__put",
            "summary": "Replace the floating IPs of the running document (the rest stays)",
            "parameters": [if_match],
            "requestBody": {"required": True, **_json(floating_ips_body)},
            "responses": {
                "200": _ok({"title": "Response Put Floating Ips V1 System Config Floating Ips"
                                     "  Put"}),
                "412": {"description": "If-Match is not the ETag of the document the box runs"},
                "415": _NOT_JSON,
                "422": {"description": "invalid floating IPs: every bad field, by path"},
                "500": _STEP_FAILED,
            },
        }},
    }  # fmt: skip


def _error_schemas() -> dict[str, Any]:
    """The 422 body of a bad request (``{"detail": [{"loc", "msg", "type"}, ...]}``)."""
    error = {
        "properties": {
            "ctx": {"title": "Context", "type": "object"},
            "input": {"title": "Input"},
            "loc": {"items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    "title": "Location", "type": "array"},
            "msg": {"title": "Message", "type": "string"},
            "type": {"title": "Error Type", "type": "string"},
        },
        "required": ["loc", "msg", "type"], "title": "ValidationError", "type": "object",
    }  # fmt: skip
    detail = {"items": {"$ref": "#/components/schemas/ValidationError"}, "title": "Detail",
              "type": "array"}  # fmt: skip
    return {
        "HTTPValidationError": {"properties": {"detail": detail}, "title": "HTTPValidationError",
                                "type": "object"},
        "ValidationError": error,
    }  # fmt: skip


def document() -> dict[str, Any]:
    """The whole OpenAPI document."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "Astara appliance API", "version": "1"},
        "paths": paths(),
        "components": {"schemas": {**json_schema(), **_error_schemas()}},
    }


def openapi_json() -> str:
    """The OpenAPI document as ``docs/appliance-openapi.json`` holds it."""
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # regenerate: python -m astara.appliance.openapi > docs/...
    print(openapi_json(), end="")

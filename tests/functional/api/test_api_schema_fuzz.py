"""Schemathesis drives every operation of the served API from its own OpenAPI document:
no input the schema allows may crash it (5xx) or get an answer its schema does not describe."""

from __future__ import annotations

from collections.abc import Callable

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.functional.api.conftest import Served

CHECKS = [not_a_server_error, response_schema_conformance]


def test_every_operation_survives_what_its_schema_allows(serve: Callable[..., Served]):
    api = serve()
    schema = schemathesis.openapi.from_url(f"{api.server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=6, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def call(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=CHECKS)

        call()
    assert api.control.polls > 0 and api.control.reloads > 0  # the calls reached the control

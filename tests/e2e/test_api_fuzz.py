"""The API fuzzed from its own OpenAPI document: whatever it is sent, valid or not, it answers
without a server error, and every error is JSON of the documented shape.

Schemathesis generates the requests (positive and negative) from /openapi.json; Hypothesis drives
them. (Schemathesis' own pytest plugin does not run on pytest 9, hence the direct strategies.)
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

pytestmark = pytest.mark.e2e
EXAMPLES_PER_OPERATION = 40


def operations(stack):
    schema = schemathesis.openapi.from_url(f"{stack['api_url']}/openapi.json")
    schema.config.update(base_url=stack["api_url"])
    return [result.ok() for result in schema.get_all_operations()]


def test_the_document_describes_every_job_route(stack):
    paths = {(op.method.upper(), op.path) for op in operations(stack)}
    assert {("POST", "/jobs"), ("GET", "/jobs"), ("GET", "/jobs/{job_id}"), ("POST", "/jobs/{job_id}/cancel"), ("GET", "/operations")} <= paths


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_gets_a_server_error(stack, sandbox, mode):
    for operation in operations(stack):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(case):
            response = case.call(timeout=20)
            case.validate_response(response, checks=(not_a_server_error,))
            if response.status_code >= 400:
                error = response.json()["error"]
                assert error["code"] and error["message"], response.text

        try:
            check()
        except Unsatisfiable:
            # An operation with no parameters and no body has nothing to make invalid.
            assert mode is GenerationMode.NEGATIVE and not operation.query and not operation.body, operation.path

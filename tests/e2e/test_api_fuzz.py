"""The API fuzzed from its own OpenAPI document: whatever it is sent, valid or not, it answers
without a server error, and every error is JSON of the documented shape.

Schemathesis generates the requests (positive and negative) from /openapi.json; Hypothesis drives
them. (Schemathesis' own pytest plugin does not run on pytest 9, hence the direct strategies.)
"""

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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
    assert {
        ("POST", "/jobs"),
        ("GET", "/jobs"),
        ("GET", "/jobs/{job_id}"),
        ("POST", "/jobs/{job_id}/cancel"),
        ("GET", "/operations"),
    } <= paths


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


# --- what a schema does not generate: content types, casings, query parameters nobody declared ---

ALLOWED = {"account", "limit", "next", "operation", "status"}


def documented(stack) -> dict:
    return httpx.get(f"{stack['api_url']}/openapi.json", timeout=20).json()


def assert_our_error_or_success(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["code"] and error["message"], response.text


@given(
    content_type=st.one_of(
        st.sampled_from(
            [
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data",
                "application/xml",
                "application/octet-stream",
                "application/json; charset=latin-1",
                "",
                "*/*",
                "TEXT/JSON",
            ]
        ),
        st.from_regex(r"[a-z]{1,10}/[a-z0-9.+-]{1,20}(; ?[a-z]+=[a-z0-9-]+)?", fullmatch=True),
    ),
    json_body=st.booleans(),
)
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_any_content_type_gets_a_4xx_or_the_json_read(stack, api, content_type, json_body):
    body = b'{"filename": "contacts.csv"}' if json_body else b"filename=contacts.csv"
    response = api.post("/uploads", content=body, headers={"content-type": content_type})

    assert_our_error_or_success(response)
    if json_body:  # read whatever the content type said
        assert response.status_code == 201, (content_type, response.text)
    else:
        assert response.status_code in (400, 415), (content_type, response.text)


@given(
    status=st.sampled_from(["SUBMITTED", "RUNNING", "SUCCEEDED", "PARTIAL", "FAILED", "TIMED_OUT", "CANCELLED"]),
    operation=st.sampled_from(["pinpointe.list_subscribers", "mypreferences.bulk_import", "which50.contact_import"]),
    flips=st.lists(st.booleans(), min_size=40, max_size=40),
)
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_filters_in_any_casing_are_honoured(stack, api, status, operation, flips):
    def odd(text: str) -> str:
        return "".join(c.upper() if flip else c.lower() for c, flip in zip(text, flips, strict=False))

    response = api.get("/jobs", params={"status": odd(status), "operation": odd(operation)})

    assert response.status_code == 200, response.text
    assert all(job["status"] == status and job["operation"] == operation for job in response.json()["jobs"])


@given(
    names=st.lists(
        st.text(alphabet=st.characters(codec="ascii", exclude_categories=["Cc"]), min_size=1, max_size=12),
        min_size=1,
        max_size=3,
        unique=True,
    )
)
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_query_parameters_nobody_declared_are_refused(stack, api, names):
    response = api.get("/jobs", params={name: "x" for name in names})

    assert_our_error_or_success(response)
    if set(names) - ALLOWED:
        assert response.status_code == 422, (names, response.text)
        fields = {d["field"] for d in response.json()["error"]["details"]}
        assert {f"query.{name}" for name in set(names) - ALLOWED} <= fields


def test_routes_that_do_not_exist_answer_in_our_shape(api):
    missing, wrong_method = api.get("/no/such/route"), api.delete("/jobs")

    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "GET, POST"


def test_every_documented_example_succeeds_against_the_local_stack(stack, sandbox, api):
    sent = 0
    for path, item in documented(stack)["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            for example in [e["value"] for e in content.get("examples", {}).values()] + (
                [content["example"]] if "example" in content else []
            ):
                created = f"/schedules/{example['name']}" if (method, path) == ("post", "/schedules") else None
                if created:  # the fuzz test above may have sent the same example already
                    api.delete(created)
                response = api.request(method.upper(), path, json=example)
                assert 200 <= response.status_code < 300, (method, path, example, response.text)
                if created:
                    api.delete(created)
                sent += 1
    assert sent >= 2

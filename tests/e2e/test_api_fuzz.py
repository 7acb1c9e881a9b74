"""The API fuzzed over HTTP: whatever it is sent, valid or not, it answers without a server error,
and every error is JSON of the documented shape.

Two generators, each run against every route of template.yaml (one test per route, so a slow or
failing route is named and the others still run):

- Schemathesis, from the API's own /openapi.json: requests that follow the document (positive) and
  requests that break it (negative), in parameters, headers and bodies.
- Our own hostile bodies, what no schema describes: JSON nested far past any parser's recursion,
  integers of thousands of digits, NaN and Infinity, arbitrary bytes, under any content type, on
  every route that takes a body; the bodies that once made a 500 (KNOWN_BAD) on every run.

`make test` draws 40 examples per route and mode (about 2 minutes in all); `make fuzz` draws
JOBRELAY_FUZZ_EXAMPLES (1,000 by default). Hypothesis draws new examples on every run. (Schemathesis'
own pytest plugin does not run on pytest 9, hence the direct strategies.)
"""

import json
import os

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from devstack.template import resolve_template

pytestmark = pytest.mark.e2e
EXAMPLES = int(os.environ.get("JOBRELAY_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))

# Every route API Gateway sends to a function: the template is where routes are declared.
ROUTES = sorted({(route.method, route.path) for route in resolve_template().routes if route.path is not None})
BODY_ROUTES = [(method, path) for method, path in ROUTES if method in ("POST", "PUT", "PATCH")]
PATH_VALUES = {"job_id": "job_01jd3q6w7v8x9y0z1a2b3c4d5e", "name": "fuzz-schedule", "token": "x" * 43}


# How a request is framed, not what it asks: API Gateway reads these itself and refuses a wrong one
# before any function sees the request (a Content-Length longer than the body leaves any server
# waiting for bytes that never come), so they are left to the HTTP client.
FRAMING_HEADERS = {"content-length", "transfer-encoding", "host", "connection", "expect"}


def route_id(route: tuple[str, str]) -> str:
    return f"{route[0]} {route[1]}"


@pytest.fixture(scope="module")
def document_operations(stack) -> dict[tuple[str, str], object]:
    # from_dict: from_url leaves out the operation that serves the document, which is a route too.
    schema = schemathesis.openapi.from_dict(httpx.get(f"{stack['api_url']}/openapi.json", timeout=20).json())
    schema.config.update(base_url=stack["api_url"])
    return {(op.method.upper(), op.path): op for op in (result.ok() for result in schema.get_all_operations())}


def assert_our_error_or_success(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.request.method, response.request.url, response.text[:2000])
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["code"] and error["message"], response.text


@pytest.mark.parametrize("route", ROUTES, ids=route_id)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda mode: mode.value)
def test_no_request_gets_a_server_error(stack, sandbox, document_operations, route, mode):
    operation = document_operations.get(route)
    assert operation is not None, f"{route_id(route)} is in template.yaml but not in /openapi.json"

    @given(case=operation.as_strategy(generation_mode=mode))
    @FUZZ
    def check(case):
        for name in [name for name in case.headers or {} if name.lower() in FRAMING_HEADERS]:
            del case.headers[name]
        response = case.call(timeout=60)  # a slow answer is not what this test is after; a 5xx is
        case.validate_response(response, checks=(not_a_server_error,))
        if response.status_code >= 400:
            error = response.json()["error"]
            assert error["code"] and error["message"], response.text

    try:
        check()
    except Unsatisfiable:
        # An operation with no parameters and no body has nothing to make invalid.
        assert mode is GenerationMode.NEGATIVE and not operation.query and not operation.body, route


# --- what no schema generates: hostile bodies, content types, casings, undeclared parameters ---


def nested(depth: int, kind: str) -> str:
    return "[" * depth + "]" * depth if kind == "array" else '{"a": ' * depth + "1" + "}" * depth


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
HOSTILE_BODIES = st.one_of(
    # Past our depth bound, and past the interpreter's recursion limit (bodies over 256 KiB are a 413).
    st.builds(
        nested,
        # Hypothesis favours small integers: the depths that broke things are named so they come up.
        st.sampled_from([33, 990, 1_000, 5_000, 100_000]) | st.integers(min_value=30, max_value=130_000),
        st.sampled_from(["array", "object"]),
    ),
    st.integers(min_value=4_200, max_value=20_000).map(lambda digits: '{"timeout_seconds": ' + "9" * digits + "}"),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1" * 400 + ".5"]).map(
        lambda number: '{"timeout_seconds": ' + number + ', "limit": [' + number + "]}"
    ),
    st.binary(max_size=300),  # not UTF-8, control characters, a BOM, anything
    JSON_VALUES.map(json.dumps),
)
CONTENT_TYPES = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "text/plain",
            "application/xml",
            "multipart/form-data",
            "multipart/form-data; boundary=x",
            "application/x-www-form-urlencoded",
            "application/octet-stream",
            "application/json; charset=latin-1",
            "",
            "*/*",
        ]
    ),
    st.from_regex(r"[a-z]{1,10}/[a-z0-9.+-]{1,20}(; ?[a-z]+=[a-z0-9-]+)?", fullmatch=True),
)


# Sent to every route on every run, before the drawn ones: each of these once made a 500.
KNOWN_BAD = [
    (nested(100_000, "array"), "application/json"),
    (nested(100_000, "array"), "text/plain"),
    (nested(40_000, "object"), ""),
    ('{"timeout_seconds": ' + "9" * 5_000 + "}", "application/json"),
    ('{"timeout_seconds": NaN, "limit": 1e999}', "application/json"),
    (b'{"name": "\xff\xfe"}', "application/json"),
    ("<job/>", "application/xml"),
    ("--x\r\n\r\nx\r\n--x--", "multipart/form-data"),
    ('{"filename": "a&Action=b"}', "application/json"),  # moto once took the event for another AWS call
]


@pytest.mark.parametrize("route", BODY_ROUTES, ids=route_id)
def test_no_body_gets_a_server_error(stack, api, route):
    method, path = route
    url = path.format(**PATH_VALUES)

    @given(body=HOSTILE_BODIES, content_type=CONTENT_TYPES)
    @FUZZ
    def check(body, content_type):
        content = body if isinstance(body, bytes) else body.encode()
        assert_our_error_or_success(api.request(method, url, content=content, headers={"content-type": content_type}))

    for body, content_type in KNOWN_BAD:
        check = example(body=body, content_type=content_type)(check)
    check()


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
@FUZZ
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
@FUZZ
def test_filters_in_any_casing_are_honoured(stack, api, status, operation, flips):
    def odd(text: str) -> str:
        return "".join(c.upper() if flip else c.lower() for c, flip in zip(text, flips, strict=False))

    response = api.get("/jobs", params={"status": odd(status), "operation": odd(operation)})

    assert response.status_code == 200, response.text
    assert all(job["status"] == status and job["operation"] == operation for job in response.json()["jobs"])


ALLOWED = {"account", "limit", "next", "operation", "status"}


@given(
    names=st.lists(
        st.text(alphabet=st.characters(codec="ascii", exclude_categories=["Cc"]), min_size=1, max_size=12),
        min_size=1,
        max_size=3,
        unique=True,
    )
)
@example(names=["0", "Action"])  # the local stack's Invoke once took "&Action=" in an event for another AWS call
@FUZZ
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
    document = httpx.get(f"{stack['api_url']}/openapi.json", timeout=20).json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            for documented in [e["value"] for e in content.get("examples", {}).values()] + (
                [content["example"]] if "example" in content else []
            ):
                created = f"/schedules/{documented['name']}" if (method, path) == ("post", "/schedules") else None
                if created:  # the fuzz test above may have sent the same example already
                    api.delete(created)
                response = api.request(method.upper(), path, json=documented)
                assert 200 <= response.status_code < 300, (method, path, documented, response.text)
                if created:
                    api.delete(created)
                sent += 1
    assert sent >= 2

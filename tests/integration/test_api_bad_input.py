"""Input no client should send, through the API function's real handler as Lambda runs it (an API
Gateway HTTP API payload 2.0 event, the template's environment, moto): each gets a 4xx in our error
shape that says what is wrong, never a 500. Bodies above all, on every route that reads one.

A body that is JSON is read whatever its content type says; one that is not is a 400 when it claims
to be JSON (or claims nothing) and a 415 when it claims to be something else.
"""

import base64
import json
import logging
from urllib.parse import urlencode

import pytest

from devstack.resources import create_resources
from tests.integration.aws_env import forget_wiring, mocked_aws
from tests.integration.test_handlers import Deployed, http_event

BODY_ROUTES = ["POST /jobs", "POST /uploads", "POST /schedules", "PATCH /schedules/{name}"]
PATH_VALUES = {"name": "nightly-summary", "job_id": "job_01jd3q6w7v8x9y0z1a2b3c4d5e"}


@pytest.fixture(scope="module")
def deployed():
    # Refused bodies never reach AWS; the resources are there so that a body that is read is
    # served as it would be (the handler, its wiring, the template's environment).
    with pytest.MonkeyPatch.context() as monkeypatch, mocked_aws(monkeypatch):
        stack = Deployed(monkeypatch)
        create_resources(stack.template, stack.client)
        yield stack
        forget_wiring()


def send(deployed, route_key: str, body: str | None, content_type: str | None = "application/json", base64_encoded=False):
    method, route = route_key.split(" ")
    path = route.format(**PATH_VALUES)
    event = http_event(
        "api_list_operations.json",
        routeKey=route_key,
        rawPath=path,
        rawQueryString="",
        pathParameters={name: value for name, value in PATH_VALUES.items() if "{" + name + "}" in route} or None,
        body=body,
        isBase64Encoded=base64_encoded,
    )
    headers = {name: value for name, value in event["headers"].items() if name != "content-type"}
    event["headers"] = headers | ({"content-type": content_type} if content_type is not None else {})
    event["requestContext"]["http"].update(method=method, path=path)
    event["requestContext"]["routeKey"] = route_key
    answer = deployed.invoke("ApiFunction", event)
    return answer["statusCode"], json.loads(answer["body"]) if answer.get("body") else None


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


DEEP = "[" * 100_000 + "]" * 100_000
LONG_INTEGER = '{"timeout_seconds": ' + "9" * 5_000 + "}"

# (what, content type, body, base64-encoded, status, code, words the message must hold)
BAD_BODIES = [
    ("JSON nested 100,000 deep", "application/json", DEEP, False, 400, "INVALID_JSON", "nested deeper than 32 levels"),
    ("JSON nested 100,000 deep, no content type", None, DEEP, False, 400, "INVALID_JSON", "nested deeper than 32 levels"),
    ("JSON objects nested 33 deep", "application/json", '{"a": ' * 33 + "1" + "}" * 33, False, 400, "INVALID_JSON", "32"),
    ("an integer of 5,000 digits", "application/json", LONG_INTEGER, False, 400, "INVALID_JSON", "more than 4300 digits"),
    ("1e999", "application/json", '{"timeout_seconds": 1e999}', False, 400, "INVALID_JSON", "out of range"),
    ("NaN", "application/json", '{"timeout_seconds": NaN}', False, 400, "INVALID_JSON", "NaN, which is not JSON"),
    ("-Infinity", "application/json", '{"timeout_seconds": -Infinity}', False, 400, "INVALID_JSON", "-Infinity"),
    ("JSON that breaks off", "application/json", '{"operation": ', False, 400, "INVALID_JSON", "line 1, column 15"),
    (
        "text/plain",
        "text/plain",
        "operation=pinpointe.list_subscribers",
        False,
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        "application/json",
    ),
    ("application/xml", "application/xml", "<job><operation>x</operation></job>", False, 415, "UNSUPPORTED_MEDIA_TYPE", "xml"),
    (
        "multipart without a boundary",
        "multipart/form-data",
        "--x\r\n\r\nx\r\n--x--",
        False,
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        "form",
    ),
    (
        "multipart with a boundary",
        "multipart/form-data; boundary=x",
        '--x\r\nContent-Disposition: form-data; name="operation"\r\n\r\nx\r\n--x--\r\n',
        False,
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        "application/json",
    ),
    ("form-urlencoded", "application/x-www-form-urlencoded", "operation=x&params=y", False, 415, "UNSUPPORTED_MEDIA_TYPE", ""),
    ("an image", "image/png", b64(b"\x89PNG\r\n\x1a\n\x00\xff"), True, 415, "UNSUPPORTED_MEDIA_TYPE", "image/png"),
    ("deep JSON labelled text", "text/plain", DEEP, False, 415, "UNSUPPORTED_MEDIA_TYPE", "application/json"),
    ("invalid UTF-8 labelled JSON", "application/json", b64(b'{"operation": "\xff\xfe"}'), True, 400, "INVALID_JSON", "UTF-8"),
    ("invalid UTF-8 labelled text", "text/plain", b64(b"\xc3\x28 caf\xe9"), True, 415, "UNSUPPORTED_MEDIA_TYPE", ""),
    ("base64 that is not base64", "application/json", "%%% not base64 %%%", True, 400, "INVALID_JSON", ""),
    ("an empty body", "application/json", "", False, 422, "INVALID_REQUEST", "not valid"),
    ("no body at all", "application/json", None, False, 422, "INVALID_REQUEST", "not valid"),
    ("a body over 256 KiB", "application/json", '{"a": "' + "x" * 256 * 1024 + '"}', False, 413, "PAYLOAD_TOO_LARGE", ""),
    ("over 256 KiB, base64", "application/json", b64(b"[" * (256 * 1024 + 3)), True, 413, "PAYLOAD_TOO_LARGE", ""),
]


@pytest.mark.parametrize("route_key", BODY_ROUTES)
@pytest.mark.parametrize(
    ("content_type", "body", "base64_encoded", "status", "code", "says"),
    [case[1:] for case in BAD_BODIES],
    ids=[case[0] for case in BAD_BODIES],
)
def test_a_bad_body_gets_a_4xx_that_says_why(deployed, route_key, content_type, body, base64_encoded, status, code, says):
    answer_status, answer = send(deployed, route_key, body, content_type, base64_encoded)

    assert (answer_status, answer["error"]["code"]) == (status, code), answer
    assert says in answer["error"]["message"], answer
    if status == 415:  # says what to send instead
        assert "send a JSON body, with content-type: application/json" in answer["error"]["message"]


@pytest.mark.parametrize("route_key", BODY_ROUTES)
@pytest.mark.parametrize(
    ("content_type", "body", "base64_encoded"),
    [
        ("application/json", "[" * 32 + "]" * 32, False),  # as deep as we read
        ("application/json", '{"timeout_seconds": ' + "9" * 4_000 + "}", False),  # as long as Python reads
        ("text/plain", '{"timeout_seconds": 1.5}', False),  # JSON under another label
        ("application/json", b64(b'{"timeout_seconds": "x"}'), True),  # API Gateway's base64 of a JSON body
    ],
    ids=["32 deep", "4,000 digits", "JSON labelled text", "base64"],
)
def test_json_within_the_bounds_is_read_and_its_fields_checked(deployed, route_key, content_type, body, base64_encoded):
    status, answer = send(deployed, route_key, body, content_type, base64_encoded)

    # Read: what is wrong now is a field of the body (422, each field named), not the body itself.
    assert (status, answer["error"]["code"]) == (422, "INVALID_REQUEST"), answer
    assert all(detail["field"].startswith("body") for detail in answer["error"]["details"]), answer


def test_a_json_body_under_a_base64_encoding_is_read(deployed):
    status, ticket = send(deployed, "POST /uploads", b64(b'{"filename": "contacts.csv"}'), base64_encoded=True)

    assert status == 201 and ticket["s3_uri"].endswith("/contacts.csv")


@pytest.mark.parametrize("route_key", ["POST /jobs/{job_id}/cancel", "POST /schedules/{name}/run"])
def test_a_route_that_takes_no_body_ignores_whatever_it_is_sent(deployed, route_key):
    for body, content_type in [(DEEP, "application/json"), (LONG_INTEGER, "application/json"), ("<x/>", "application/xml")]:
        status, answer = send(deployed, route_key, body, content_type)

        assert (status, answer["error"]["code"]) == (404, "NOT_FOUND"), answer  # no such job or schedule


@pytest.mark.parametrize("account", ["", "has space", "a" * 65, "ünïcode"])
def test_an_account_no_job_can_have_is_refused_not_looked_up(deployed, account):
    event = http_event(
        "api_list_jobs.json", rawQueryString=urlencode({"account": account}), queryStringParameters={"account": account}
    )

    answer = deployed.invoke("ApiFunction", event)

    error = json.loads(answer["body"])["error"]
    assert (answer["statusCode"], error["code"]) == (422, "INVALID_REQUEST"), error
    assert [detail["field"] for detail in error["details"]] == ["query.account"]


# --- the line between reading a request (4xx) and the route's own work (5xx) ------------------------


def test_a_failure_while_reading_the_request_is_a_logged_400(deployed, monkeypatch, caplog):
    """Whatever reading a request raises that no refusal foresaw is the input's doing: a 400, and
    logged with its traceback, since the reader should have refused it precisely."""
    from jobrelay.api import bodies

    def unforeseen(text: str):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(bodies, "parse", unforeseen)

    with caplog.at_level(logging.ERROR):
        status, answer = send(deployed, "POST /uploads", '{"filename": "contacts.csv"}')

    assert (status, answer["error"]["code"]) == (400, "BAD_REQUEST"), answer
    assert "could not be read" in answer["error"]["message"] and "Recursion" not in answer["error"]["message"]
    logged = [record for record in caplog.records if record.getMessage() == "the request could not be read"]
    assert logged and logged[0].exc_info and logged[0].exc_info[0] is RecursionError


def test_a_failure_of_the_route_once_the_request_is_read_is_still_a_logged_500(deployed, monkeypatch, caplog):
    from jobrelay import wiring

    def broken():
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(wiring, "upload_service", broken)

    with caplog.at_level(logging.ERROR):
        status, answer = send(deployed, "POST /uploads", '{"filename": "contacts.csv"}')

    assert (status, answer["error"]["code"]) == (500, "INTERNAL"), answer
    assert "a bug of ours" not in answer["error"]["message"]
    assert any(record.exc_info and record.exc_info[0] is RuntimeError for record in caplog.records)

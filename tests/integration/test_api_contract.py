"""The OpenAPI document the API serves (GET /openapi.json, through the API function's real handler):
valid OpenAPI 3.1, complete against template.yaml, and honest: the errors it lists are our shape,
the params schemas are the catalogue's, and every example it offers succeeds when sent as it is."""

import json
import re
import subprocess
import sys

import pytest
from openapi_spec_validator import validate

from jobrelay.operations import OPERATIONS
from tests.integration.test_handlers import REPO, deployed, http_event, sandbox  # noqa: F401 (fixtures)

EXPECTED_OPERATION_IDS = {
    ("POST", "/jobs"): "submitJob",
    ("GET", "/jobs"): "listJobs",
    ("GET", "/jobs/{job_id}"): "getJob",
    ("POST", "/jobs/{job_id}/cancel"): "cancelJob",
    ("POST", "/uploads"): "createUpload",
    ("GET", "/operations"): "listOperations",
    ("POST", "/schedules"): "createSchedule",
    ("GET", "/schedules"): "listSchedules",
    ("GET", "/schedules/{name}"): "getSchedule",
    ("DELETE", "/schedules/{name}"): "deleteSchedule",
}


def request(deployed, method: str, path: str, route: str, body=None) -> dict:  # noqa: F811
    event = http_event(
        "api_list_operations.json",
        routeKey=f"{method} {route}",
        rawPath=path,
        body=None if body is None else json.dumps(body),
    )
    event["requestContext"]["http"].update(method=method, path=path)
    event["requestContext"]["routeKey"] = f"{method} {route}"
    return deployed.invoke("ApiFunction", event)


@pytest.fixture
def document(deployed) -> dict:  # noqa: F811
    answer = request(deployed, "GET", "/openapi.json", "/openapi.json")
    assert answer["statusCode"] == 200
    return json.loads(answer["body"])


def operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_route_of_the_template_is_in_it(deployed, document):  # noqa: F811
    documented = {(method, path) for method, path, _ in operations(document)}
    routes = {(route.method, route.path) for route in deployed.template.routes if route.path is not None}
    assert routes and routes <= documented


def test_every_route_but_the_vendor_webhook_is_signed_with_sigv4(document):
    scheme = document["components"]["securitySchemes"]["sigv4"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")
    assert "SigV4" in scheme["description"] or "Signature Version 4" in scheme["description"]
    assert document["security"] == [{"sigv4": []}]
    unsigned = {path for _, path, operation in operations(document) if operation.get("security") == []}
    assert unsigned == {"/webhooks/pinpointe/{job_id}/{token}"}


def test_operations_have_readable_ids_tags_and_descriptions(document):
    found = {(method, path): operation for method, path, operation in operations(document)}
    assert {key: found[key]["operationId"] for key in EXPECTED_OPERATION_IDS} == EXPECTED_OPERATION_IDS
    for key, operation in found.items():
        assert re.fullmatch(r"[a-z][A-Za-z]+", operation["operationId"]), key
        assert operation.get("tags"), key
        # The schedule routes' descriptions are their owners' to write (issue 10 left them out).
        assert operation.get("description"), key
    assert {tag["name"] for tag in document["tags"]} >= {tag for op in found.values() for tag in op["tags"]}


def test_errors_are_described_by_our_shape_and_only_where_they_happen(document):
    text = json.dumps(document)
    assert "HTTPValidationError" not in text
    found = {(method, path): operation["responses"] for method, path, operation in operations(document)}
    for key, responses in found.items():
        for status, response in responses.items():
            if status.startswith("4") and key[1] != "/docs":
                assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}, key
    assert {"400", "409", "413", "415", "422"} <= set(found[("POST", "/jobs")])
    assert "404" not in found[("POST", "/jobs")]  # there is no job to be missing
    assert "404" in found[("GET", "/jobs/{job_id}")] and "413" not in found[("GET", "/jobs/{job_id}")]
    assert "413" in found[("POST", "/uploads")]
    submitted = found[("POST", "/jobs")]
    assert set(submitted["409"]["headers"]) == {"Retry-After"} and set(submitted["202"]["headers"]) == {"Location"}


def test_a_submission_is_one_schema_per_operation_of_the_catalogue(document):
    schema = document["paths"]["/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schemas = document["components"]["schemas"]

    assert schema["discriminator"]["propertyName"] == "operation"
    assert set(schema["discriminator"]["mapping"]) == set(OPERATIONS)
    for name, ref in schema["discriminator"]["mapping"].items():
        variant = schemas[ref.rsplit("/", 1)[1]]
        params = schemas[variant["properties"]["params"]["$ref"].rsplit("/", 1)[1]]
        assert variant["properties"]["operation"]["const"] == name
        assert params["properties"].keys() == OPERATIONS[name].params_schema()["properties"].keys()


def test_exactly_one_of_rules_are_in_the_params_schemas(document):
    schemas = document["components"]["schemas"]
    assert schemas["TagSubscribersParams"]["oneOf"] == [{"required": ["tag"]}, {"required": ["tagname"]}]
    assert [rule["required"] for rule in schemas["AutoresponderResultsParams"]["oneOf"]] == [
        ["autoresponderid"],
        ["autorespondername"],
        ["all"],
    ]


def test_the_callback_we_post_is_described(document):
    callback = document["webhooks"]["jobEnded"]["post"]
    headers = {parameter["name"] for parameter in callback["parameters"] if parameter["in"] == "header"}
    assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert "Standard Webhooks" in callback["description"]
    body = callback["requestBody"]["content"]["application/json"]
    assert set(body["schema"]["required"]) <= set(body["example"])


def test_every_documented_request_example_succeeds_as_it_is(deployed, document):  # noqa: F811
    sent = 0
    for method, path, operation in operations(document):
        content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        examples = [example["value"] for example in content.get("examples", {}).values()]
        examples += [content["example"]] if "example" in content else []
        if not examples or path.startswith("/webhooks/"):
            continue
        assert "{" not in path, f"{method} {path}: fill its path parameters here"
        for example in examples:
            answer = request(deployed, method, path, path, body=example)
            assert 200 <= answer["statusCode"] < 300, (method, path, example, answer["body"])
            sent += 1
    assert sent >= 1 + sum(op.example_params is not None for op in OPERATIONS.values())


def test_loading_the_api_handler_leaves_the_resolver_for_the_first_request():
    # The cold-start budget: Powertools' validating resolver and the OpenAPI machinery load on the
    # first request, not when Lambda imports the handler.
    code = (
        "import importlib.util, sys;"
        "spec = importlib.util.spec_from_file_location('api_app', 'functions/api/app.py');"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec));"
        "loaded = [m for m in ('jobrelay.api.routes', 'jobrelay.api.resolver', 'jobrelay.api.models') if m in sys.modules];"
        "print(loaded)"
    )
    env = {"PYTHONPATH": f"{REPO / 'layers' / 'jobrelay'}", "PATH": "/usr/bin:/bin"}
    loaded = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"

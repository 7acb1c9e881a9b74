"""`jobrelay submit`'s key=value params, read against the real catalogue's schemas (the same JSON
Schema GET /operations serves): types, lists, booleans, JSON values, required and unknown params,
--params-file; and a wrong param exits 2 with nothing submitted."""

import json

import pytest

from jobrelay.operations import OPERATIONS
from jobrelay_cli.errors import UsageError
from jobrelay_cli.params import parse_duration, parse_params
from tests.unit.cli_support import Answer, catalogue, job, run_cli

pytestmark = pytest.mark.usefixtures("cli_env")


def parse(operation: str, *arguments: str, **options):
    return parse_params(operation, OPERATIONS[operation].params_schema(), list(arguments), **options)


def problems(operation: str, *arguments: str, **options) -> list[str]:
    with pytest.raises(UsageError) as caught:
        parse(operation, *arguments, **options)
    assert caught.value.exit_code == 2
    return caught.value.details


def test_text_whole_numbers_and_booleans_take_their_schema_types():
    assert parse("pinpointe.newsletter_contact_data_summary", "stat=4711", "startdate=2026-11-01") == {
        "stat": "4711",  # an id is text in the schema, even when it looks like a number
        "startdate": "2026-11-01",
    }
    assert parse("pinpointe.autoresponder_results", "all=true", "limit=500", "grouping=send") == {
        "all": True,
        "limit": 500,
        "grouping": "send",
    }
    for word, value in (("yes", True), ("False", False), ("on", True), ("no", False)):
        assert parse("pinpointe.list_subscribers", "list=1", f"include_membership={word}")["include_membership"] is value


def test_lists_come_comma_separated_repeated_or_as_json():
    assert parse("pinpointe.list_subscribers", "list=1,2", "list=3")["list"] == ["1", "2", "3"]
    assert parse("pinpointe.list_subscribers", 'list=["7", "8"]')["list"] == ["7", "8"]
    assert parse("pinpointe.list_subscribers", "list=1", "customfields=all")["customfields"] == ["all"]
    imported = parse(
        "which50.contact_import",
        "source=s3://bucket-name/uploads/contacts.csv",
        "format=csv",
        "contact_list_id=12",
        "field_names=Email,FirstName",
        "field_names=Mobile",
        "batch_size=5000",
    )
    assert imported["contact_list_id"] == 12
    assert imported["field_names"] == ["Email", "FirstName", "Mobile"]
    assert imported["batch_size"] == 5000


def test_json_values_with_colon_equals():
    params = parse(
        "mypreferences.bulk_import",
        "source=s3://bucket-name/uploads/p.jsonl",
        "format=jsonl",
        "name=nightly",
        "match_value:=null",
        'match_criteria:="AlternateIdType"',
        "data_stage_duration:=5",
    )
    assert params["match_value"] is None
    assert params["match_criteria"] == "AlternateIdType"
    assert params["data_stage_duration"] == 5


def test_wrong_types_are_named_with_what_was_given():
    found = problems("pinpointe.autoresponder_results", "all=maybe", "limit=ten", "grouping=daily", "autoresponderid:={not json")
    assert "all: expected true or false, got 'maybe'" in found
    assert "limit: expected a whole number, got 'ten'" in found
    assert "grouping: must be one of: autoresponder, send, got 'daily'" in found
    assert "autoresponderid: not valid JSON, got '{not json'" in found


def test_bounds_and_item_types():
    found = problems("pinpointe.autoresponder_results", "all=true", "limit=0")
    assert found == ["limit: must be at least 1, got '0'"]
    found = problems("which50.contact_import", "source=s3://b-1/k", "format=csv", "contact_list_id=0", "field_names:=[1]")
    assert "contact_list_id: must be more than 0, got '0'" in found
    assert "field_names: item 1: expected text" in found


def test_missing_required_and_unknown_keys_are_all_reported_at_once():
    found = problems("pinpointe.list_subscribers", "lists=1", "colour=blue")
    assert any(p.startswith("lists: unknown param (did you mean list?); it takes: status,") for p in found)
    assert any(p.startswith("colour: unknown param; it takes:") for p in found)
    assert "list: required, not given" in found
    assert problems("pinpointe.newsletter_contact_data_summary") == ["stat: required, not given"]


def test_exactly_one_of_rules_from_the_schema():
    assert problems("pinpointe.tag_subscribers") == ["give exactly one of: tag; tagname"]
    assert problems("pinpointe.tag_subscribers", "tag=1", "tagname=vip") == ["give only one of: tag; tagname (got tag; tagname)"]
    assert parse("pinpointe.tag_subscribers", "tagname=vip") == {"tagname": "vip"}
    # `all` counts only when true: all=false with an id is one choice.
    assert parse("pinpointe.autoresponder_results", "all=false", "autoresponderid=301")["autoresponderid"] == "301"
    assert problems("pinpointe.autoresponder_results", "all=false") == [
        "give exactly one of: autoresponderid; autorespondername; all=true"
    ]


def test_a_key_given_twice_and_a_malformed_argument():
    found = problems("pinpointe.newsletter_contact_data_summary", "stat=1", "stat=2", "stat")
    assert found == ["stat: given more than once", "'stat': expected key=value (or key:=json)"]


def test_params_file_is_merged_under_the_command_line(tmp_path):
    params_file = tmp_path / "p.json"
    params_file.write_text(json.dumps({"list": ["1", "2"], "status": "active", "include_membership": True}))
    params = parse("pinpointe.list_subscribers", "status=bounced", params_file=params_file)
    assert params == {"list": ["1", "2"], "status": "bounced", "include_membership": True}
    params_file.write_text(json.dumps({"list": "1", "colour": "blue"}))
    found = problems("pinpointe.list_subscribers", params_file=params_file)
    assert "list: expected list of text" in found
    assert any(p.startswith("colour: unknown param") for p in found)
    params_file.write_text("[1, 2]")
    with pytest.raises(UsageError, match="must hold a JSON object"):
        parse("pinpointe.list_subscribers", params_file=params_file)


def test_params_another_option_supplies_count_as_given():
    supplied = frozenset({"source", "format"})
    assert parse("mypreferences.bulk_import", "name=nightly", supplied=supplied) == {"name": "nightly"}


def test_durations():
    assert [parse_duration(text) for text in ("90", "90s", "15m", "2h", "1d", "1h30m")] == [90, 90, 900, 7200, 86400, 5400]
    for wrong in ("", "2 hours", "h", "0s", "-5"):
        with pytest.raises(ValueError):
            parse_duration(wrong)


# --- through the command: exit 2 and nothing submitted ---------------------------------------------


def test_a_wrong_param_exits_2_with_nothing_sent(fake_api):
    fake_api.route("GET", "/operations", catalogue())
    result = run_cli("--api-url", fake_api.url, "submit", "pinpointe.list_subscribers", "list=1", "include_membership=maybe")
    assert result.exit_code == 2
    assert "error: the params are not valid for pinpointe.list_subscribers" in result.stderr
    assert "  - include_membership: expected true or false, got 'maybe'" in result.stderr
    assert "Traceback" not in result.output
    assert [(r.method, r.path) for r in fake_api.requests] == [("GET", "/operations")]


def test_an_unknown_operation_exits_2_naming_the_known_ones(fake_api):
    fake_api.route("GET", "/operations", catalogue())
    result = run_cli("--api-url", fake_api.url, "submit", "pinpointe.nope", "x=1")
    assert result.exit_code == 2
    assert "error: unknown operation 'pinpointe.nope'" in result.stderr
    assert "pinpointe.list_subscribers" in result.stderr
    assert not fake_api.sent("POST")


def test_a_good_submission_sends_typed_params_and_the_options(fake_api):
    fake_api.route("GET", "/operations", catalogue())
    fake_api.route("POST", "/jobs", Answer(202, job(status="SUBMITTED")))
    result = run_cli(
        "--api-url",
        fake_api.url,
        "submit",
        "pinpointe.list_subscribers",
        "list=1,2",
        "include_membership=true",
        "--timeout",
        "2h",
        "--account",
        "eu",
        "--idempotency-key",
        "nightly-2026-11-22",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "submitted job_01test (SUBMITTED)"
    (posted,) = fake_api.sent("POST", "/jobs")
    assert posted.json() == {
        "operation": "pinpointe.list_subscribers",
        "params": {"list": ["1", "2"], "include_membership": True},
        "account": "eu",
        "timeout_seconds": 7200,
    }
    assert posted.headers["idempotency-key"] == "nightly-2026-11-22"
    assert posted.headers["content-type"] == "application/json"


def test_a_bad_timeout_is_a_usage_error(fake_api):
    result = run_cli("--api-url", fake_api.url, "submit", "pinpointe.list_subscribers", "list=1", "--timeout", "soon")
    assert result.exit_code == 2
    assert "is not a duration" in result.output
    assert fake_api.requests == []


def test_operations_shows_each_params_type_and_whether_it_is_required(fake_api):
    fake_api.route("GET", "/operations", catalogue())
    result = run_cli("--api-url", fake_api.url, "operations", "which50.contact_import")
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert "whole number (over 0)" in lines["contact_list_id"] and " yes " in lines["contact_list_id"]
    assert "list of text" in lines["field_names"]
    assert "one of: jsonl, csv" in lines["format"]
    as_json = run_cli("--api-url", fake_api.url, "--output", "json", "operations", "which50.contact_import")
    assert json.loads(as_json.stdout)["params_schema"] == OPERATIONS["which50.contact_import"].params_schema()

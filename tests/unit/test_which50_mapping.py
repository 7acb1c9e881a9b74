"""Which50's payloads as jobrelay reads and writes them: the status rule, contacts, params, answers."""

import json

import pytest
from pydantic import ValidationError

from jobrelay.domain.errors import VendorProtocolError
from jobrelay.operations import get_operation
from jobrelay.ports import VendorState
from jobrelay.vendors.which50.api import ImportJob, SchemaField, batch_warnings, identifier_fields, vendor_message
from jobrelay.vendors.which50.contacts import ContactRules, check_contact, encode_contacts
from jobrelay.vendors.which50.params import ContactImportParams

RULES = ContactRules(12, frozenset({"Email", "FirstName", "Mobile", "Score"}), ("Email", "Mobile"))


def job(**fields):
    return ImportJob.model_validate({"Id": 345, **fields})


# --- completion (VENDORS.md 3.3 step 4) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "state"),
    [
        ({"CurrentStatus": "Created"}, VendorState.RUNNING),
        ({"CurrentStatus": "Running", "ProgressPercent": 40}, VendorState.RUNNING),
        ({"CurrentStatus": "Whatever", "ProgressPercent": 100}, VendorState.DONE),
        ({"CurrentStatus": None, "FinishDate": "2026-11-22T07:10:00"}, VendorState.DONE),
        ({"CurrentStatus": "Failed", "FinishDate": "2026-11-22T07:10:00", "ProgressPercent": 100}, VendorState.FAILED),
        ({"CurrentStatus": "Completed with errors"}, VendorState.FAILED),
        ({"CurrentStatus": "Aborted"}, VendorState.FAILED),
        ({"CurrentStatus": "CompletedWithErrors"}, VendorState.FAILED),
        ({"CurrentStatus": "Completed (no errors)", "ProgressPercent": 100}, VendorState.DONE),
        ({"CurrentStatus": "Terrorform"}, VendorState.RUNNING),  # a word that merely contains one
    ],
)
def test_completion_is_decided_defensively(fields, state):
    assert job(**fields).state is state


@pytest.mark.parametrize(
    ("fields", "started"),
    [
        ({"CurrentStatus": "Created", "StartDate": "2026-11-22T07:00:00"}, False),  # StartDate is no sign
        ({"CurrentStatus": "NotYetRun"}, False),
        ({"CurrentStatus": "not_run"}, False),
        ({"CurrentStatus": "Running"}, True),
        ({"CurrentStatus": "Queued"}, True),
        ({"CurrentStatus": "Created", "ProgressPercent": 3}, True),
        ({"FinishDate": "2026-11-22T07:10:00"}, True),
    ],
)
def test_a_job_has_started_only_on_a_clear_sign(fields, started):
    assert job(**fields).has_started is started


def test_counters_missing_or_null_read_as_zero_and_dates_are_read_as_utc():
    status = job(InsertedContacts=None, UpdatedContacts=4, StartDate="2026-11-22T07:00:00", FinishDate="yesterday")
    assert status.counts() == {
        "inserted": 0, "updated": 4, "dropped": 0, "not_updated": 0, "invalid_email": 0, "invalid_sms": 0, "total": 0,
    }  # fmt: skip
    assert status.times() == {
        "start_date": "2026-11-22T07:00:00", "finish_date": "yesterday",
        "started_at": "2026-11-22T07:00:00+00:00", "finished_at": None,
    }  # fmt: skip


def test_an_answer_that_is_no_import_job_is_a_protocol_error():
    with pytest.raises(VendorProtocolError, match="not an ImportJob"):
        ImportJob.from_body(["x"], "GetImportJob")
    with pytest.raises(VendorProtocolError, match="Id"):
        ImportJob.from_body({"CurrentStatus": "Running"}, "GetImportJob")
    assert job(ProgressPercent=250).percent == 100


# --- identifiers and contacts ----------------------------------------------------------------------


def test_identifier_fields_come_from_map_types_then_names_and_match():
    fields = [SchemaField(Name="Email", MapType="Email"), SchemaField(Name="Phone2", MapType="Sms"), SchemaField(Name="Ref", MapType="Text")]
    assert identifier_fields(fields, ["Ref", "Email", "Phone2"], []) == ["Email", "Phone2"]
    assert identifier_fields(fields, ["Ref", "Email"], ["Ref"]) == ["Ref", "Email"]
    untyped = [SchemaField(Name="EmailAddress", MapType="Text"), SchemaField(Name="Name", MapType="Text")]
    assert identifier_fields(untyped, ["Name", "EmailAddress"], []) == ["EmailAddress"]


def test_a_contact_keeps_its_values_and_drops_empty_ones():
    contact = check_contact({"Email": "ada@example.org", "FirstName": "", "Mobile": None, "Score": 7}, RULES)
    assert contact.values == {"Email": "ada@example.org", "Score": 7} and contact.key == "ada@example.org"
    update = check_contact({"EncContactId": "Xy9", "FirstName": "Bob"}, RULES)
    assert update.key == "Xy9"
    body = encode_contacts([contact, update])
    assert json.loads(body) == [
        {"ListId": 12, "Values": {"Email": "ada@example.org", "Score": 7}},
        {"EncContactId": "Xy9", "ListId": 12, "Values": {"FirstName": "Bob"}},
    ]


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"FirstName": "Nobody"}, "no identifier"),
        ({"Email": "", "Mobile": ""}, "no identifier"),
        ({"Email": "a@b.org", "Shoe": 42}, "not among the import's field_names: Shoe"),
        ({"Email": "a@b.org", "FirstName": {"nested": 1}}, "FirstName must be text"),
        ({"Email": "a@b.org", "FirstName": "x" * 4001}, "longer than 4000"),
        ({"EncContactId": 5}, "EncContactId must be text"),
    ],
)
def test_a_record_that_cannot_be_sent_says_why(record, reason):
    with pytest.raises(ValueError, match=reason):
        check_contact(record, RULES)


def test_the_batch_answer_is_read_for_warnings_by_position():
    answer = json.dumps([{"Values": {}}, {"ValidationWarnings": ["Invalid email address: 'x'", ""]}, {"ValidationWarnings": []}])
    assert batch_warnings(answer.encode()) == [(1, ["Invalid email address: 'x'"])]
    assert batch_warnings(b"") == [] and batch_warnings(b'{"Id": 345}') == []
    with pytest.raises(VendorProtocolError):
        batch_warnings(b"<html>")


def test_error_bodies_are_read_as_aspnet_messages():
    assert vendor_message(b'{"Message": "ContactList 99 was not found."}') == "ContactList 99 was not found."
    assert vendor_message(b"Service Unavailable") == "Service Unavailable"


# --- params ------------------------------------------------------------------------------------


def params(**overrides):
    base = {"contact_list_id": 12, "source": "s3://bucket/uploads/contacts.jsonl", "format": "jsonl", "field_names": ["Email", "FirstName"]}
    return ContactImportParams.model_validate(base | overrides)


def test_params_default_to_full_batches():
    assert params().batch_size == 10_000 and params().match is None


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"field_names": []}, "at least 1"),
        ({"field_names": ["Email", "Email"]}, "repeats Email"),
        ({"field_names": ["Email", "EncContactId"]}, "EncContactId is not a field"),
        ({"match": ["Mobile"]}, "not in field_names: Mobile"),
        ({"custom_events": ["Welcome,Again"]}, "pattern"),
        ({"batch_size": 10_001}, "less than or equal to 10000"),
        ({"contact_list_id": 0}, "greater than 0"),
        ({"source": "https://example.org/file"}, "pattern"),
    ],
)
def test_params_refuse_what_would_not_work(overrides, problem):
    with pytest.raises(ValidationError, match=problem):
        params(**overrides)


def test_the_operation_is_in_the_catalogue_as_an_import():
    operation = get_operation("which50.contact_import")
    assert operation.vendor == "which50" and operation.is_import
    assert "field_names" in operation.params_schema()["required"]

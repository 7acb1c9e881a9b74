"""Which50's payloads as jobrelay reads and writes them: the status rule, contacts, params, answers."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from jobrelay.domain.bulk_import import ImportTotals
from jobrelay.domain.errors import VendorProtocolError
from jobrelay.domain.job import Job, Progress
from jobrelay.domain.operation import OperationKind
from jobrelay.domain.reconciliation import Reconciler
from jobrelay.domain.vendor_outcomes import VendorState
from jobrelay.operations import get_operation
from jobrelay.vendors.redaction import register_secret
from jobrelay.vendors.which50.adapter import Which50Account, Which50Imports
from jobrelay.vendors.which50.api import (
    ImportJob,
    SchemaField,
    StatusWord,
    batch_warnings,
    identifier_fields,
    read_fields,
    read_status,
    vendor_message,
)
from jobrelay.vendors.which50.contacts import ContactRules, check_contact, encode_contacts
from jobrelay.vendors.which50.params import ContactImportParams

RULES = ContactRules(12, frozenset({"Email", "FirstName", "Mobile", "Score"}), ("Email", "Mobile"))


def job(**fields):
    return ImportJob.model_validate({"Id": 345, **fields})


# --- completion (docs/VENDORS.md 3.3 step 4; api.py ASSUMPTIONS) ----------------------------------------

FINISHED = "2026-11-22T07:10:00"


@pytest.mark.parametrize(
    ("status", "word"),
    [
        # casings and separators of one word
        ("Completed", StatusWord.DONE), ("COMPLETED", StatusWord.DONE), ("completed", StatusWord.DONE),
        ("Complete", StatusWord.DONE), ("Finished", StatusWord.DONE), ("Done", StatusWord.DONE),
        ("Success", StatusWord.DONE), ("Succeeded", StatusWord.DONE), ("Imported", StatusWord.DONE),
        ("Processed", StatusWord.DONE), ("ProcessingComplete", StatusWord.DONE),
        # an -ing form runs; "Importing" is not "Imported"
        ("Importing", StatusWord.RUNNING), ("Processing", StatusWord.RUNNING), ("Running", StatusWord.RUNNING),
        ("InProgress", StatusWord.RUNNING), ("in_progress", StatusWord.RUNNING), ("Queued", StatusWord.RUNNING),
        ("Completing", StatusWord.RUNNING), ("FINISHING", StatusWord.RUNNING),
        # not run yet; a noun of a done word says nothing
        ("Created", StatusWord.PENDING), ("New", StatusWord.PENDING), ("Pending", StatusWord.PENDING),
        ("AwaitingCompletion", StatusWord.PENDING),
        # with errors
        ("CompletedWithErrors", StatusWord.DONE_WITH_ERRORS), ("COMPLETED_WITH_ERRORS", StatusWord.DONE_WITH_ERRORS),
        ("Completed with errors", StatusWord.DONE_WITH_ERRORS), ("completedWithWarnings", StatusWord.DONE_WITH_ERRORS),
        ("PartiallyCompleted", StatusWord.DONE_WITH_ERRORS), ("Partial", StatusWord.DONE_WITH_ERRORS),
        # failure
        ("Failed", StatusWord.FAILED), ("FAILED", StatusWord.FAILED), ("Error", StatusWord.FAILED),
        ("ImportError", StatusWord.FAILED), ("Aborted", StatusWord.FAILED), ("Canceled", StatusWord.FAILED),
        ("FailedToComplete", StatusWord.FAILED), ("CompletedWithFailures", StatusWord.FAILED),
        # negations: the words after one say nothing
        ("Completed (no errors)", StatusWord.DONE), ("Completed without warnings", StatusWord.DONE),
        ("NotYetRun", StatusWord.UNKNOWN), ("not_completed", StatusWord.UNKNOWN),
        # unknown or absent
        ("Terrorform", StatusWord.UNKNOWN), ("Warning", StatusWord.UNKNOWN), ("3", StatusWord.UNKNOWN),
        ("", StatusWord.ABSENT), (None, StatusWord.ABSENT), ("   ", StatusWord.ABSENT),
    ],
)  # fmt: skip
def test_status_words_are_read_in_any_casing_with_synonyms_and_negations(status, word):
    assert read_status(status) is word


@pytest.mark.parametrize(
    ("fields", "state"),
    [
        # a percentage alone never finishes a job, whatever the word says
        ({"CurrentStatus": "Processing", "ProgressPercent": 100}, VendorState.RUNNING),
        ({"CurrentStatus": "Whatever", "ProgressPercent": 100}, VendorState.RUNNING),
        ({"ProgressPercent": 100}, VendorState.RUNNING),
        ({"CurrentStatus": "Created"}, VendorState.RUNNING),
        ({"CurrentStatus": "Running", "ProgressPercent": 40}, VendorState.RUNNING),
        # the word decides; FinishDate only where the word is absent or unknown
        ({"CurrentStatus": "COMPLETED", "ProgressPercent": 100, "FinishDate": FINISHED}, VendorState.DONE),
        ({"CurrentStatus": "Finished"}, VendorState.DONE),
        ({"CurrentStatus": "Processing", "FinishDate": FINISHED}, VendorState.RUNNING),
        ({"CurrentStatus": None, "FinishDate": FINISHED}, VendorState.DONE),
        ({"CurrentStatus": "Terrorform", "FinishDate": FINISHED}, VendorState.DONE),
        ({"CurrentStatus": "Terrorform"}, VendorState.RUNNING),
        ({"CurrentStatus": None, "FinishDate": "0001-01-01T00:00:00"}, VendorState.RUNNING),  # .NET's "never set"
        # completed with errors is done, whatever was applied: reconcile() explains it
        ({"CurrentStatus": "CompletedWithErrors", "InsertedContacts": 90}, VendorState.DONE),
        ({"CurrentStatus": "Completed with errors"}, VendorState.DONE),
        # FAILED only when the vendor says failed and nothing was applied
        ({"CurrentStatus": "Failed", "FinishDate": FINISHED, "ProgressPercent": 100}, VendorState.FAILED),
        ({"CurrentStatus": "Aborted", "InsertedContacts": 0, "UpdatedContacts": 0}, VendorState.FAILED),
        ({"CurrentStatus": "Failed", "InsertedContacts": 80}, VendorState.DONE),
        ({"CurrentStatus": "Error", "UpdatedContacts": 1}, VendorState.DONE),
    ],
)
def test_a_job_is_finished_only_when_the_vendor_says_so(fields, state):
    assert job(**fields).state is state


@pytest.mark.parametrize(
    ("fields", "started"),
    [
        ({"CurrentStatus": "Created", "StartDate": "2026-11-22T07:00:00"}, False),  # StartDate is no sign
        ({"CurrentStatus": "NotYetRun"}, False),
        ({"CurrentStatus": "not_run"}, False),
        ({"CurrentStatus": "Pending"}, False),
        ({"CurrentStatus": "Whatever"}, False),  # an unknown word is no sign either
        ({"CurrentStatus": "Running"}, True),
        ({"CurrentStatus": "IMPORTING"}, True),
        ({"CurrentStatus": "Queued"}, True),
        ({"CurrentStatus": "Done"}, True),
        ({"CurrentStatus": "Failed"}, True),
        ({"CurrentStatus": "Created", "ProgressPercent": 3}, True),
        ({"FinishDate": "2026-11-22T07:10:00"}, True),
        ({"FinishDate": "0001-01-01T00:00:00"}, False),
    ],
)
def test_a_job_has_started_only_on_a_clear_sign(fields, started):
    assert job(**fields).has_started is started


def test_keys_are_read_in_any_casing_and_numbers_as_strings():
    status = ImportJob.from_body(
        {"id": "345", "currentStatus": "COMPLETED", "progressPercent": "100", "insertedContacts": "7",
         "updated_contacts": 2, "TOTALCONTACTS": 9, "finishDate": FINISHED},
        "GetImportJob",
    )  # fmt: skip
    assert (status.Id, status.state, status.percent) == (345, VendorState.DONE, 100)
    assert status.counts() == {"inserted": 7, "updated": 2, "total": 9}  # only the counters given
    assert job(ProgressPercent=99.6).percent == 99


def test_null_counters_read_as_zero_missing_ones_are_not_given_and_dates_are_read_as_utc():
    status = job(InsertedContacts=None, UpdatedContacts=4, StartDate="2026-11-22T07:00:00", FinishDate="yesterday")
    assert status.counts() == {"inserted": 0, "updated": 4}
    assert status.times() == {
        "start_date": "2026-11-22T07:00:00", "finish_date": "yesterday",
        "started_at": "2026-11-22T07:00:00+00:00", "finished_at": None,
    }  # fmt: skip


def test_an_answer_that_is_no_import_job_is_a_protocol_error_with_a_redacted_excerpt():
    register_secret("sk-which50-test-key-123")
    with pytest.raises(VendorProtocolError, match="not an ImportJob") as refused:
        ImportJob.from_body(["x"], "GetImportJob")
    assert refused.value.answer == '["x"]'
    with pytest.raises(VendorProtocolError, match="Id") as refused:
        ImportJob.from_body({"CurrentStatus": "Running", "Note": "key sk-which50-test-key-123"}, "GetImportJob")
    assert "Running" in refused.value.answer and "sk-which50-test-key-123" not in refused.value.answer
    assert job(ProgressPercent=250).percent == 100


def test_an_unknown_word_keeps_an_excerpt_of_its_answer():
    status = ImportJob.from_body({"Id": 345, "CurrentStatus": "Reticulating", "ProgressPercent": 100}, "GetImportJob")
    assert status.status_word is StatusWord.UNKNOWN and status.state is VendorState.RUNNING
    assert "Reticulating" in status.excerpt()


# --- identifiers and contacts ----------------------------------------------------------------------


def test_identifier_fields_come_from_map_types_then_names_and_match():
    fields = [
        SchemaField(Name="Email", MapType="Email"),
        SchemaField(Name="Phone2", MapType="Sms"),
        SchemaField(Name="Ref", MapType="Text"),
    ]
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
    with pytest.raises(VendorProtocolError) as refused:
        batch_warnings(b"<html>")
    assert refused.value.answer == "<html>"


@pytest.mark.parametrize(
    ("answer", "warnings"),
    [
        # camelCase keys, a single warning as text
        ([{"listId": 12}, {"validationWarnings": "Invalid SMS number: '12'"}], [(1, ["Invalid SMS number: '12'"])]),
        # keyed by 0-based or 1-based position, in any order
        ({"1": {"ValidationWarnings": ["b"]}, "0": {"ListId": 12}}, [(1, ["b"])]),
        ({"2": {"ValidationWarnings": ["b"]}, "1": {"ValidationWarnings": ["a"]}}, [(1, ["b"]), (0, ["a"])]),
        # keyed by id: the order of the answer
        ({"Xy9": {"ValidationWarnings": ["a"]}, "Ab1": {"ListId": 12}}, [(0, ["a"])]),
        # a single contact
        (
            {"ListId": 12, "Values": {"Email": "x"}, "ValidationWarnings": ["Invalid email address: 'x'"]},
            [(0, ["Invalid email address: 'x'"])],
        ),
    ],
)
def test_the_batch_echo_is_read_in_every_shape(answer, warnings):
    assert batch_warnings(json.dumps(answer).encode()) == warnings


def test_error_bodies_are_read_as_aspnet_messages():
    assert vendor_message(b'{"Message": "ContactList 99 was not found."}') == "ContactList 99 was not found."
    assert vendor_message(b"Service Unavailable") == "Service Unavailable"


# --- params ------------------------------------------------------------------------------------


def params(**overrides):
    base = {
        "contact_list_id": 12,
        "source": "s3://bucket/uploads/contacts.jsonl",
        "format": "jsonl",
        "field_names": ["Email", "FirstName"],
    }
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
    assert operation.vendor == "which50" and operation.kind is OperationKind.BULK_IMPORT
    assert "field_names" in operation.params_schema()["required"]


def test_the_lists_fields_are_read_in_any_casing_and_shape():
    fields = read_fields({"Email": {"mapType": "Email", "id": 1201}, "FirstName": {"mapType": "Text"}})
    assert [(f.Name, f.MapType) for f in fields] == [("Email", "Email"), ("FirstName", "Text")]
    assert [f.Name for f in read_fields([{"name": "Mobile", "maptype": "Sms"}])] == ["Mobile"]
    with pytest.raises(VendorProtocolError) as refused:
        read_fields(["Email"])
    assert refused.value.answer == '["Email"]'


# --- reconciliation (ImportTotals against Which50's final counts) -----------------------------------


def reconciled(counts: dict, status: str = "Completed", *, sent: int = 10, **params):
    """The Reconciliation of an import of `sent` contacts that Which50 finished with `counts`."""
    imports = Which50Imports(Which50Account.model_validate({"api_key": "a-test-api-key", "base_url": "https://which50.test"}))
    finished_job = Job(
        job_id="job-1", operation="which50.contact_import", vendor="which50",
        deadline_at=datetime.now(UTC) + timedelta(hours=1),
        params={"contact_list_id": 12, "source": "s3://bucket/uploads/c.jsonl", "format": "jsonl", "field_names": ["Email"], **params},
        progress=Progress(percent=100, counts=counts), vendor_status=status,
    )  # fmt: skip
    rec = Reconciler()
    imports.reconcile(finished_job, ImportTotals(read=sent, refused=0, sent=sent, listed_failures=0, warnings=0), rec)
    return rec.result()


CLEAN = {"inserted": 7, "updated": 3, "dropped": 0, "not_updated": 0, "invalid_email": 0, "invalid_sms": 0, "total": 10}


def test_every_contact_inserted_or_updated_and_counted_is_complete():
    result = reconciled(CLEAN, "COMPLETED")
    assert result.complete and result.reconciled is True and result.shortfall == []
    assert [(c.check, c.ours, c.vendor) for c in result.checks] == [
        ("Which50's TotalContacts = InsertedContacts + UpdatedContacts", 10, 10),
        ("contacts sent = contacts Which50 inserted, updated, did not update or found invalid", 10, 10),
    ]


def test_contacts_not_applied_are_a_shortfall_explained_by_each_counter():
    result = reconciled({**CLEAN, "inserted": 5, "not_updated": 2, "invalid_email": 1, "total": 8})
    # Every contact is in a count (8 imported, the invalid one among them, 2 not updated): reconciled,
    # and still not complete.
    assert not result.complete and result.reconciled is True
    assert result.checks[-1].note == "contacts with an invalid value were imported without it"
    assert result.shortfall == [
        "Which50 inserted or updated 8 of the 10 contacts sent: 2 did not make it",
        "Which50 counted 2 existing contacts not updated",
        "Which50 counted 1 invalid email address",
    ]


def test_invalid_contacts_counted_apart_from_those_imported_are_accounted_for_too():
    result = reconciled({**CLEAN, "inserted": 4, "not_updated": 2, "invalid_email": 1, "total": 7})
    assert result.reconciled is True and result.checks[-1].note == "contacts with an invalid value were not imported"


def test_contacts_no_counter_explains_are_said_so():
    result = reconciled({**CLEAN, "inserted": 4, "total": 7})
    assert result.reconciled is False
    assert result.shortfall == [
        "Which50 inserted or updated 7 of the 10 contacts sent: 3 did not make it, 3 of them counted by no Which50 counter"
    ]


def test_a_total_that_does_not_add_up_is_never_complete():
    result = reconciled({**CLEAN, "total": 12})
    assert not result.complete
    assert result.shortfall == ["Which50's counts do not add up: TotalContacts is 12, but it inserted 7 and updated 3"]


def test_more_applied_than_sent_is_a_mismatch_without_match():
    result = reconciled({**CLEAN, "updated": 5, "total": 12})
    assert not result.complete and "12 contacts but 10 were sent" in result.shortfall[0]


def test_with_match_a_record_may_update_several_contacts():
    several = reconciled({**CLEAN, "updated": 9, "total": 16}, match=["Email"])
    assert several.complete and [c.check for c in several.checks] == [
        "Which50's TotalContacts = InsertedContacts + UpdatedContacts"
    ]
    fewer = reconciled({**CLEAN, "inserted": 2, "total": 5}, match=["Email"])
    assert fewer.shortfall == [
        "Which50 inserted or updated 5 of the 10 records sent: 5 did not make it, 5 of them counted by no Which50 counter"
    ]


def test_an_invalid_value_is_a_shortfall_even_when_its_contact_was_imported():
    result = reconciled({**CLEAN, "invalid_sms": 1})
    assert result.reconciled is True and result.shortfall == ["Which50 counted 1 invalid SMS number"]


@pytest.mark.parametrize(
    ("status", "said"),
    [
        ("CompletedWithErrors", "Which50 finished the import with errors (status 'CompletedWithErrors')"),
        ("Failed", "Which50 reports the import as failed (status 'Failed') after applying some contacts"),
    ],
)
def test_a_status_word_with_errors_or_of_failure_is_a_shortfall_even_with_clean_counts(status, said):
    result = reconciled(CLEAN, status)
    assert not result.complete and result.shortfall == [said]


def test_no_count_of_applied_contacts_is_a_shortfall_not_a_success():
    result = reconciled({})
    assert not result.complete and result.reconciled is None
    assert result.shortfall == ["Which50 gave no count of contacts inserted or updated: the import cannot be checked"]

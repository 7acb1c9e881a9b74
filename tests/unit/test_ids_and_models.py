import pytest
from pydantic import ValidationError

from jobrelay.api.models import JobSubmission
from jobrelay.domain.errors import InvalidRequest
from jobrelay.domain.ids import new_job_id
from jobrelay.domain.job import JobPatch, Progress
from jobrelay.operations import OPERATIONS, get_operation


def test_job_ids_are_url_safe_unique_and_sort_by_time():
    ids = [new_job_id(now_ms=1_700_000_000_000 + n) for n in range(50)]
    assert len(set(ids)) == 50
    assert ids == sorted(ids)
    assert all(len(i) == 30 and i.startswith("job_") and i[4:].isalnum() for i in ids)


def test_callback_urls_accepted():
    url = "https://hooks.example.org/jobrelay"
    assert JobSubmission(operation="x", callback_url=url).callback_url == url


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/cb", "http://localhost/cb"])
def test_local_callback_urls_are_accepted_only_where_the_stack_allows_them(monkeypatch, url):
    monkeypatch.delenv("ALLOW_LOCAL_CALLBACKS", raising=False)
    with pytest.raises(ValidationError):
        JobSubmission(operation="x", callback_url=url)

    monkeypatch.setenv("ALLOW_LOCAL_CALLBACKS", "true")  # the local stack's setting
    assert JobSubmission(operation="x", callback_url=url).callback_url == url


@pytest.mark.parametrize(
    "url",
    ["http://hooks.example.org/cb", "ftp://example.org/x", "https://169.254.169.254/latest/meta-data", "not a url"],
)
def test_callback_urls_refused(url):
    with pytest.raises(ValidationError):
        JobSubmission(operation="x", callback_url=url)


def test_submission_rejects_unknown_fields_and_bad_accounts():
    with pytest.raises(ValidationError):
        JobSubmission(operation="x", colour="blue")
    with pytest.raises(ValidationError):
        JobSubmission(operation="x", account="../etc")


def test_patch_writes_only_what_was_set_including_assignment_after_construction():
    patch = JobPatch(polls=3)
    patch.progress = Progress(percent=40)
    assert patch.fields() == {"polls": 3, "progress": Progress(percent=40).model_dump(mode="json")}
    assert patch.fields()["progress"]["percent"] == 40


def test_unknown_operation_names_the_known_ones():
    with pytest.raises(InvalidRequest) as caught:
        get_operation("pinpointe.everything")
    assert "pinpointe.list_subscribers" in caught.value.details["known_operations"]


@pytest.mark.parametrize(
    ("operation", "params", "field"),
    [
        ("pinpointe.newsletter_contact_data_summary", {}, "params.stat"),
        ("pinpointe.newsletter_contact_data_summary", {"stat": "1", "startdate": "2025-02-30"}, "params.startdate"),
        ("pinpointe.newsletter_contact_data_summary", {"stat": "1", "startdate": "20250230"}, "params.startdate"),
        ("pinpointe.newsletter_contact_data_summary", {"stat": "1", "startdate": "20250105", "enddate": "20250101"}, "params"),
        ("pinpointe.list_subscribers", {"list": []}, "params.list"),
        ("pinpointe.list_subscribers", {"list": ["1"], "status": "happy"}, "params.status"),
        ("pinpointe.segment_subscribers", {"segmentid": ["1"], "surprise": 1}, "params.surprise"),
        ("pinpointe.tag_subscribers", {}, "params"),
    ],
)
def test_bad_params_are_reported_by_field(operation, params, field):
    with pytest.raises(InvalidRequest) as caught:
        OPERATIONS[operation].validate_params(params)
    assert field in [d["field"] for d in caught.value.details]


def test_params_normalise_ids_and_dates():
    params = OPERATIONS["pinpointe.list_subscribers"].validate_params(
        {"list": [12, "34"], "startdate": "20250101", "enddate": "2025-01-02"}
    )
    assert params.model_dump(mode="json", exclude_none=True)["list"] == ["12", "34"]
    assert str(params.startdate) == "2025-01-01"


def test_every_operation_publishes_a_json_schema():
    for operation in OPERATIONS.values():
        schema = operation.params_schema()
        assert schema["type"] == "object" and schema["properties"]


def test_a_job_stored_before_the_typed_fields_reads_as_it_meant():
    from datetime import UTC, datetime

    from jobrelay.domain.job import Job

    stored = {
        "job_id": "job_1",
        "operation": "mypreferences.bulk_import",
        "vendor": "mypreferences",
        "deadline_at": datetime(2030, 1, 1, tzinfo=UTC).isoformat(),
        "vendor_ref": {
            "status": "Staging",
            "last_status": "Staging",
            "access_token": 918273,
            "expires_at": "2030-01-01T00:00:00+00:00",
        },
        "checkpoint": {"checkpoint": {"staged_records": 12, "next_batch_index": 2}, "batch_sizes": [6, 6]},
    }
    job = Job.model_validate(stored)

    # Its staging resumes after the 12 records already staged, never from the first one again.
    assert job.import_state is not None and job.import_state.checkpoint.staged_records == 12
    assert job.vendor_status == "Staging" and job.vendor_ref == {"status": "Staging", "expires_at": "2030-01-01T00:00:00+00:00"}
    assert job.vendor_secrets == {"access_token": 918273}  # never shown, still there for the adapter

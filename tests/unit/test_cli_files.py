"""Result files down (streamed, checked against the job's size and SHA-256 before they take their
name), failed records streamed, and a records file up with `submit --file`."""

import json
import tracemalloc

import pytest

from tests.unit.cli_support import Answer, catalogue, chunks, job, result_file, result_of, run_cli, sha256_of

pytestmark = pytest.mark.usefixtures("cli_env")


def finished_job(fake_api, *files: tuple[str, bytes]) -> None:
    listed = [result_file(name, content, f"{fake_api.url}/files/{name}?X-Amz-Signature=abc") for name, content in files]
    fake_api.route("GET", "/jobs/job_01test", job(status="PARTIAL", result=result_of(*listed)))


def test_every_result_file_lands_under_its_name(fake_api, tmp_path):
    summary, result = b'{"records": 2}', b'{"count": 2, "subscribers": [{}, {}]}'
    finished_job(fake_api, ("result.json", result), ("summary.json", summary))
    fake_api.route("GET", "/files/result.json", Answer(200, result))
    fake_api.route("GET", "/files/summary.json", Answer(200, summary))
    out = tmp_path / "out"
    done = run_cli("--api-url", fake_api.url, "download", "job_01test", "--out", str(out))
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in out.iterdir()) == ["result.json", "summary.json"]  # no temporary left
    assert (out / "result.json").read_bytes() == result
    assert "(verified)" in done.stdout

    only = tmp_path / "only"
    one = run_cli("--api-url", fake_api.url, "-o", "json", "download", "job_01test", "--out", str(only), "--file", "summary.json")
    assert one.exit_code == 0, one.output
    assert [f["name"] for f in json.loads(one.stdout)["files"]] == ["summary.json"]
    assert [p.name for p in only.iterdir()] == ["summary.json"]


def test_a_file_whose_bytes_do_not_match_its_sha256_is_an_error_and_leaves_nothing(fake_api, tmp_path):
    promised = b'{"count": 2, "subscribers": [{}, {}]}'
    tampered = promised.replace(b"2", b"3")  # same size, other bytes
    finished_job(fake_api, ("result.json", promised))
    fake_api.route("GET", "/files/result.json", Answer(200, tampered))
    result = run_cli("--api-url", fake_api.url, "download", "job_01test", "--out", str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: result.json does not match the job's record of it; the partial file was removed")
    assert sha256_of([tampered]) in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_short_file_is_an_error_too(fake_api, tmp_path):
    promised = b"0123456789" * 100
    finished_job(fake_api, ("result.json", promised))
    fake_api.route("GET", "/files/result.json", Answer(200, promised[:-10]))
    result = run_cli("--api-url", fake_api.url, "download", "job_01test", "--out", str(tmp_path))
    assert result.exit_code == 1
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_file_name_or_a_job_without_result(fake_api, tmp_path):
    finished_job(fake_api, ("result.json", b"{}"))
    unknown = run_cli("--api-url", fake_api.url, "download", "job_01test", "--file", "nope.json", "--out", str(tmp_path))
    assert unknown.exit_code == 2
    assert "error: job_01test has no result file 'nope.json'" in unknown.stderr and "result.json" in unknown.stderr
    fake_api.route("GET", "/jobs/job_01running", job("job_01running", status="RUNNING"))
    running = run_cli("--api-url", fake_api.url, "download", "job_01running", "--out", str(tmp_path))
    assert running.exit_code == 1
    assert "has no result to download (status RUNNING)" in running.stderr


def test_a_large_download_is_streamed_not_held_in_memory(fake_api, tmp_path):
    size = 48 * 1024 * 1024
    file = {
        "name": "result.json",
        "s3_uri": "s3://bucket/results/job_01test/result.json",
        "size": size,
        "sha256": sha256_of(chunks(size)),
        "download_url": f"{fake_api.url}/files/result.json",
    }
    fake_api.route("GET", "/jobs/job_01test", job(status="SUCCEEDED", result=result_of(file)))
    fake_api.route("GET", "/files/result.json", lambda _request: Answer(200, chunks(size), {"Content-Length": str(size)}))
    tracemalloc.start()
    try:
        result = run_cli("--api-url", fake_api.url, "download", "job_01test", "--out", str(tmp_path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.exit_code == 0, result.output
    assert (tmp_path / "result.json").stat().st_size == size
    assert peak < 12 * 1024 * 1024, f"peak {peak:,} bytes for a {size:,}-byte file"


def test_failures_are_streamed_as_a_table_or_json_lines(fake_api):
    failed = b'{"line": 7, "key": "C-1001", "stage": "validation", "reasons": ["Emails.0: not an email"]}\n' + (
        b'{"line": 9, "key": null, "stage": "vendor", "reasons": ["refused"]}\n'
    )
    warnings = b'{"line": 3, "warnings": ["Invalid email address: \'ada@\'"]}\n'
    finished_job(fake_api, ("summary.json", b"{}"), ("failed_records.jsonl", failed), ("validation_warnings.jsonl", warnings))
    fake_api.route("GET", "/files/failed_records.jsonl", Answer(200, failed))
    fake_api.route("GET", "/files/validation_warnings.jsonl", Answer(200, warnings))

    as_json = run_cli("--api-url", fake_api.url, "failures", "job_01test", "--output", "json")
    assert as_json.exit_code == 0, as_json.output
    assert [json.loads(line) for line in as_json.stdout.splitlines()] == [
        json.loads(line) for line in (failed + warnings).splitlines()
    ]
    as_table = run_cli("--api-url", fake_api.url, "failures", "job_01test")
    assert as_table.exit_code == 0, as_table.output
    header, *rows = as_table.stdout.splitlines()
    assert header.split() == ["file", "line", "stage", "key", "reasons"]
    assert rows[0].split()[:4] == ["failed_records.jsonl", "7", "validation", "C-1001"]
    assert rows[2].split()[:3] == ["validation_warnings.jsonl", "3", "warning"]
    assert "summary.json" not in fake_api.sent("GET")[-1].path  # only the failure files are read


def test_submit_file_uploads_the_records_then_names_them_in_the_job(fake_api, tmp_path):
    records = tmp_path / "contacts.ndjson"
    records.write_bytes(b'{"Email": "ada@example.org"}\n' * 1000)
    ticket = {
        "s3_uri": "s3://jobrelay-results/uploads/2026/11/22/Qx7p/contacts.ndjson",
        "upload_url": f"{fake_api.url}/bucket/uploads/contacts.ndjson?X-Amz-Signature=abc",
        "headers": {"Content-Type": "application/x-ndjson"},
        "expires_at": "2026-11-22T11:00:00Z",
    }
    fake_api.route("GET", "/operations", catalogue())
    fake_api.route("POST", "/uploads", Answer(201, ticket))
    fake_api.route("PUT", "/bucket/uploads/contacts.ndjson", Answer(200, b""))
    fake_api.route("POST", "/jobs", Answer(202, job()))
    result = run_cli(
        "--api-url",
        fake_api.url,
        "submit",
        "which50.contact_import",
        "contact_list_id=12",
        "field_names=Email",
        "--file",
        str(records),
    )
    assert result.exit_code == 0, result.output
    assert [(r.method, r.path) for r in fake_api.requests] == [
        ("GET", "/operations"),
        ("POST", "/uploads"),
        ("PUT", "/bucket/uploads/contacts.ndjson"),
        ("POST", "/jobs"),
    ]
    assert fake_api.requests[1].json() == {"filename": "contacts.ndjson"}
    put = fake_api.requests[2]
    assert put.body == records.read_bytes()
    assert put.headers["content-type"] == "application/x-ndjson"
    assert put.headers["content-length"] == str(records.stat().st_size)  # not chunked: S3 refuses that
    assert "authorization" not in put.headers
    assert fake_api.requests[3].json()["params"] == {
        "contact_list_id": 12,
        "field_names": ["Email"],
        "source": ticket["s3_uri"],
        "format": "jsonl",
    }


def test_submit_file_of_an_unknown_format_sends_nothing(fake_api, tmp_path):
    records = tmp_path / "contacts.txt"
    records.write_text("Email\nada@example.org\n")
    fake_api.route("GET", "/operations", catalogue())
    args = ["--api-url", fake_api.url, "submit", "which50.contact_import", "contact_list_id=12", "field_names=Email"]
    result = run_cli(*args, "--file", str(records))
    assert result.exit_code == 2
    assert "cannot tell the format of contacts.txt" in result.stderr
    assert [r.method for r in fake_api.requests] == ["GET"]
    wrong_format = run_cli(*args, "--file", str(records), "--format", "xlsx")
    assert wrong_format.exit_code == 2
    assert "format: must be one of: jsonl, csv" in wrong_format.stderr
    assert [r.method for r in fake_api.requests] == ["GET", "GET"]
    no_file_taken = run_cli("--api-url", fake_api.url, "submit", "pinpointe.list_subscribers", "list=1", "--file", str(records))
    assert no_file_taken.exit_code == 2
    assert "takes no records file" in no_file_taken.stderr

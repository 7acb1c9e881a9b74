"""The sample records files of devstack/samples/, imported through the local stack the way README
and the banner tell a user to: POST /uploads, PUT the file to upload_url with the answer's headers,
POST /jobs naming the upload, wait for the job. A sample that stops matching its sandbox fails here."""

import json
from xml.etree import ElementTree

import httpx
import pytest

from devstack.samples import SAMPLES, Sample
from tests.e2e.conftest import result_file, submit, wait_for

pytestmark = pytest.mark.e2e


def upload_file(api: httpx.Client, sample: Sample) -> str:
    ticket = api.post("/uploads", json={"filename": sample.path.name})
    assert ticket.status_code == 201, ticket.text
    put = httpx.put(ticket.json()["upload_url"], content=sample.path.read_bytes(), headers=ticket.json()["headers"])
    assert put.status_code == 200, put.text
    return ticket.json()["s3_uri"]


@pytest.mark.parametrize("sample", SAMPLES, ids=[sample.path.name for sample in SAMPLES])
def test_each_sample_file_imports_cleanly_through_the_local_stack(api, mypreferences, which50, sample):
    job_body = sample.job(upload_file(api, sample))

    job = wait_for(api, submit(api, job_body["operation"], job_body["params"])["job_id"], timeout=90)

    assert job["status"] == "SUCCEEDED", json.dumps(job, indent=1)
    lines = sample.path.read_text(encoding="utf-8").splitlines()
    assert job["progress"]["records"]["read"] == len(lines) - (1 if sample.path.suffix == ".csv" else 0)  # a header
    summary = json.loads(result_file(job, "summary.json"))
    assert summary["reconciled"] is True


def test_an_upload_put_without_the_answers_headers_is_refused_as_s3_would(api):
    sample = SAMPLES[-1]
    ticket = api.post("/uploads", json={"filename": sample.path.name}).json()
    assert set(ticket["headers"]) == {"Content-Type"}

    bare = httpx.put(ticket["upload_url"], content=sample.path.read_bytes())

    assert bare.status_code == 403
    assert ElementTree.fromstring(bare.content).findtext("Code") == "SignatureDoesNotMatch"
    # The same URL with the headers still works: the refusal stored nothing and used nothing up.
    assert httpx.put(ticket["upload_url"], content=sample.path.read_bytes(), headers=ticket["headers"]).status_code == 200

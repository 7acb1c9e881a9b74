"""Records files for bulk imports go straight to S3 through a presigned PUT from POST /uploads."""

import httpx
import pytest

pytestmark = pytest.mark.e2e


def test_a_records_file_goes_straight_to_s3_with_a_presigned_put(api, aws):
    ticket = api.post("/uploads", json={"filename": "preferences.jsonl"})
    assert ticket.status_code == 201, ticket.text
    body = b'{"Emails": [{"EmailAddress": "ada@example.org"}]}\n' * 1000

    put = httpx.put(ticket.json()["upload_url"], content=body, headers=ticket.json()["headers"])

    assert put.status_code == 200
    bucket, key = ticket.json()["s3_uri"].removeprefix("s3://").split("/", 1)
    assert key.startswith("uploads/") and aws("s3").get_object(Bucket=bucket, Key=key)["Body"].read() == body
    assert api.post("/uploads", json={"filename": ""}).status_code == 422

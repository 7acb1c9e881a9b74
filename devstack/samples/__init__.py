"""Records files to try the bulk imports with on the local stack, each with the job that imports it.

Each works against its sandbox as the stack starts it: preferences.jsonl against MyPreferences (its
AlternateIdTypes, no email at its exception domain), contacts.csv against Which50's list 12 (its
header is the job's `field_names`, all fields of that list; ada@example.org is a contact the list
already holds, so one of the four is an update). The banner lists them and
tests/e2e/test_local_samples.py imports each through the stack, as README says to.
"""

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FOLDER = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Sample:
    path: Path
    operation: str
    params: dict[str, Any]  # the job's params but `source`, which is the upload's s3_uri

    def job(self, source: str) -> dict[str, Any]:
        """The body of POST /jobs importing this file once it is uploaded to `source`."""
        return {"operation": self.operation, "params": {**self.params, "source": source}}


def _csv_header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as file:
        return next(csv.reader(file))


SAMPLES: tuple[Sample, ...] = (
    Sample(
        FOLDER / "preferences.jsonl",
        "mypreferences.bulk_import",
        {"format": "jsonl", "name": "sample preferences"},
    ),
    Sample(
        FOLDER / "contacts.csv",
        "which50.contact_import",
        {"contact_list_id": 12, "format": "csv", "field_names": _csv_header(FOLDER / "contacts.csv")},
    ),
)

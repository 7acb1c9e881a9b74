"""The parts of the API's answers the CLI reads (README.md, A job), typed. Fields the CLI does not
read are ignored here; `--output json` prints the API's JSON as it came, not these models."""

from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from jobrelay_cli.errors import CliError

FINAL_STATUSES = ("SUCCEEDED", "PARTIAL", "FAILED", "TIMED_OUT", "CANCELLED")


class Progress(BaseModel):
    percent: float | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    records: dict[str, int] = Field(default_factory=dict)
    note: str | None = None
    phase: str | None = None
    elapsed_seconds: int | None = None


class TimelineEvent(BaseModel):
    at: datetime
    event: str
    detail: dict[str, Any] = Field(default_factory=dict)


class ResultFile(BaseModel):
    name: str
    size: int
    sha256: str
    download_url: str
    s3_uri: str | None = None


class Result(BaseModel):
    s3_uri: str
    size: int
    sha256: str
    download_url: str
    files: list[ResultFile] = Field(default_factory=list)

    def all_files(self) -> list[ResultFile]:
        """Every file of the result; a result that lists none is its one main file."""
        if self.files:
            return self.files
        name = PurePosixPath(self.s3_uri).name or "result"
        return [ResultFile(name=name, size=self.size, sha256=self.sha256, download_url=self.download_url, s3_uri=self.s3_uri)]


class JobError(BaseModel):
    code: str
    message: str


class Job(BaseModel):
    job_id: str
    operation: str
    account: str = "default"
    status: str
    created_at: datetime
    updated_at: datetime | None = None
    progress: Progress = Field(default_factory=Progress)
    result: Result | None = None
    error: JobError | None = None
    timeline: list[TimelineEvent] | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


def read_job(payload: Any) -> Job:
    try:
        return Job.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False))
        raise CliError(f"the API's answer is not a job this CLI can read ({problems})") from None

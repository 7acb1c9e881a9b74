"""The params every bulk import shares: where its records file is and what format it is in.
ImportSteps reads exactly these two (`source`, `format`); each vendor's params model adds its own."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

# The shape only (a bucket name S3 would accept, then a key); whether the object exists, and is in
# a prefix jobrelay may read, is checked when the file is opened.
S3_URI_PATTERN = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+$"


class RecordsFileParams(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    source: Annotated[str, Field(pattern=S3_URI_PATTERN, description="s3://<bucket>/<key> of the records file")]
    format: Literal["jsonl", "csv"] = Field(description="JSON Lines (one object per line) or CSV with a header row")

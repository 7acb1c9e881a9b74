"""What an operation is: a vendor's job that jobrelay can run, its params, and which kind of job it is.

Each vendor package declares its operations in its manifest (jobrelay.vendors.<vendor>.manifest); the
catalogue (jobrelay.operations) collects them. The kind picks the driver that runs the job's steps
(jobrelay.drivers); the state machine is the same for every kind.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ValidationError

from jobrelay.domain.errors import InvalidRequest, VendorRejected
from jobrelay.domain.job import Job


class OperationKind(StrEnum):
    """How the vendor runs the work, which decides how jobrelay waits for it."""

    # The vendor runs it in the background and produces a result file we collect: we wait for its
    # webhook (polling as the fallback) or poll alone.
    ASYNC_EXPORT = "async_export"
    # The vendor answers at once, page by page: nothing to wait for; Collect reads every page.
    PAGED_READ = "paged_read"
    # We stage a user's records file at the vendor in batches, run the import and follow it.
    BULK_IMPORT = "bulk_import"


@dataclass(frozen=True)
class Operation:
    name: str  # "<vendor>.<what>", as POST /jobs takes it
    vendor: str
    description: str
    params_model: type[BaseModel]
    kind: OperationKind
    # "module:function" building the vendor side of the job from the account's secret (the port of
    # the kind's driver, jobrelay.ports); loaded only when a job of the operation runs.
    adapter: str
    # Params the OpenAPI document offers as a ready-to-send example (Swagger UI prefills it), so
    # they must succeed as they stand. None for an import: its `source` is a file only an upload makes.
    example_params: dict[str, Any] | None = None

    def params_schema(self) -> dict[str, Any]:
        return self.params_model.model_json_schema()

    def validate_params(self, params: dict[str, Any]) -> BaseModel:
        try:
            return self.params_model.model_validate(params)
        except ValidationError as exc:
            raise InvalidRequest(
                f"params are not valid for {self.name}",
                details=validation_details(exc, prefix=("params",)),
            ) from None


def validation_details(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[dict[str, Any]]:
    """Pydantic's errors as `[{"field": "params.stat", "message": "..."}]`, without echoing input."""
    return [
        {"field": ".".join(str(p) for p in (*prefix, *err["loc"])) or "body", "message": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


def stored_params[M: BaseModel](job: Job, model: type[M]) -> M:
    """A stored job's params, checked again when a step reads them: the job item may predate a
    change of the params model. A mismatch ends the job (VendorRejected) rather than crashing."""
    try:
        return model.model_validate(job.params)
    except ValidationError as exc:
        problems = "; ".join(f"{d['field']}: {d['message']}" for d in validation_details(exc, ("params",)))
        raise VendorRejected(f"the job's params are not valid for {job.operation} ({problems})") from None

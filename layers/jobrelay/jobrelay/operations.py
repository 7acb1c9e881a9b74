"""The catalogue of operations: what `POST /jobs` accepts and `GET /operations` lists.

Adding an operation is adding an entry here (with its params model) and, for a new vendor, an
adapter in jobrelay.vendors; the state machine does not change.
"""

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from jobrelay.domain.errors import InvalidRequest, VendorRejected
from jobrelay.domain.job import Job
from jobrelay.vendors.mypreferences.params import BulkImportParams
from jobrelay.vendors.pinpointe import params as pinpointe
from jobrelay.vendors.which50.params import ContactImportParams


@dataclass(frozen=True)
class Operation:
    name: str
    vendor: str
    description: str
    params_model: type[BaseModel]
    # "export": the vendor produces a result file we collect; "import": we stage a records file.
    kind: str = "export"
    # Params the OpenAPI document offers as a ready-to-send example (Swagger UI prefills it), so
    # they must succeed as they stand. None for an import: its `source` is a file only an upload makes.
    example_params: dict[str, Any] | None = None

    @property
    def is_import(self) -> bool:
        return self.kind == "import"

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


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation(
            "pinpointe.newsletter_contact_data_summary",
            "pinpointe",
            "Contact-level open and click detail of one campaign send (Newsletters/GetNewsletterContactDataSummaryAsync).",
            pinpointe.NewsletterContactDataSummaryParams,
            example_params={"stat": "4711", "startdate": "2026-11-01", "enddate": "2026-11-22"},
        ),
        Operation(
            "pinpointe.list_subscribers",
            "pinpointe",
            "Subscribers of one or more lists, with custom fields (Lists/GetListSubscribersAsync).",
            pinpointe.ListSubscribersParams,
            example_params={"list": ["7"], "status": "active", "customfields": ["all"]},
        ),
        Operation(
            "pinpointe.segment_subscribers",
            "pinpointe",
            "Subscribers of one or more segments (Segments/GetSegmentSubscribersAsync).",
            pinpointe.SegmentSubscribersParams,
            example_params={"segmentid": ["3"]},
        ),
        Operation(
            "pinpointe.tag_subscribers",
            "pinpointe",
            "Subscribers carrying the given tags (Tags/GetTagSubscribersAsync).",
            pinpointe.TagSubscribersParams,
            example_params={"tagname": "newsletter", "emailonly": True},
        ),
        Operation(
            "pinpointe.autoresponder_results",
            "pinpointe",
            "Summary engagement stats of autoresponder sends, for one autoresponder (by id or name) or all, "
            "one record per autoresponder or per send, every page (Autoresponders/GetAutoresponderResults); "
            "JSON Lines, with the record count in summary.json.",
            pinpointe.AutoresponderResultsParams,
            kind="export",
            example_params={"all": True, "grouping": "autoresponder"},
        ),
        Operation(
            "mypreferences.bulk_import",
            "mypreferences",
            "Import a file of preference records (JSON Lines or CSV) into PossibleNOW MyPreferences "
            "(Initiate, Stage, Execute, Retrieve status, Retrieve exceptions); failed records are reported per line.",
            BulkImportParams,
            kind="import",
        ),
        Operation(
            "which50.contact_import",
            "which50",
            "Import a file of contacts (JSON Lines or CSV) into a Which50 contact list (create the import "
            "job, post batches of up to 10,000, run it, follow its progress); inserted, updated and invalid "
            "counts and per-contact warnings are reported.",
            ContactImportParams,
            kind="import",
        ),
    )
}


def get_operation(name: str) -> Operation:
    try:
        return OPERATIONS[name]
    except KeyError:
        raise InvalidRequest(
            f"unknown operation {name!r}",
            details={"known_operations": sorted(OPERATIONS)},
        ) from None

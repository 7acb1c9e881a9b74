"""Pinpointe's operations, webhook reader and local sandbox (jobrelay.vendors.manifest)."""

from jobrelay.domain.operation import Operation, OperationKind
from jobrelay.vendors.manifest import LocalSandbox, VendorManifest
from jobrelay.vendors.pinpointe import params

EXPORTS = "jobrelay.vendors.pinpointe.adapter:pinpointe_exports"
AUTORESPONDER_RESULTS = "jobrelay.vendors.pinpointe.adapter:pinpointe_autoresponder_results"

MANIFEST = VendorManifest(
    name="pinpointe",
    title="Pinpointe",
    operations=(
        Operation(
            "pinpointe.newsletter_contact_data_summary",
            "pinpointe",
            "Contact-level open and click detail of one campaign send (Newsletters/GetNewsletterContactDataSummaryAsync).",
            params.NewsletterContactDataSummaryParams,
            OperationKind.ASYNC_EXPORT,
            EXPORTS,
            example_params={"stat": "4711", "startdate": "2026-11-01", "enddate": "2026-11-22"},
        ),
        Operation(
            "pinpointe.list_subscribers",
            "pinpointe",
            "Subscribers of one or more lists, with custom fields (Lists/GetListSubscribersAsync).",
            params.ListSubscribersParams,
            OperationKind.ASYNC_EXPORT,
            EXPORTS,
            example_params={"list": ["7"], "status": "active", "customfields": ["all"]},
        ),
        Operation(
            "pinpointe.segment_subscribers",
            "pinpointe",
            "Subscribers of one or more segments (Segments/GetSegmentSubscribersAsync).",
            params.SegmentSubscribersParams,
            OperationKind.ASYNC_EXPORT,
            EXPORTS,
            example_params={"segmentid": ["3"]},
        ),
        Operation(
            "pinpointe.tag_subscribers",
            "pinpointe",
            "Subscribers carrying the given tags (Tags/GetTagSubscribersAsync).",
            params.TagSubscribersParams,
            OperationKind.ASYNC_EXPORT,
            EXPORTS,
            example_params={"tagname": "newsletter", "emailonly": True},
        ),
        Operation(
            "pinpointe.autoresponder_results",
            "pinpointe",
            "Summary engagement stats of autoresponder sends, for one autoresponder (by id or name) or all, "
            "one record per autoresponder or per send, every page (Autoresponders/GetAutoresponderResults); "
            "JSON Lines, with the record count in summary.json.",
            params.AutoresponderResultsParams,
            OperationKind.PAGED_READ,
            AUTORESPONDER_RESULTS,
            example_params={"all": True, "grouping": "autoresponder"},
        ),
    ),
    webhook_reader="jobrelay.vendors.pinpointe.api:parse_webhook",
    sandbox=LocalSandbox(
        factory="devstack.sandbox.pinpointe:PinpointeSandbox",
        default_port=3100,
        settings={"run": {"job_seconds": 5, "records": 200}, "test": {"job_seconds": 0.5, "records": 50}},
    ),
)

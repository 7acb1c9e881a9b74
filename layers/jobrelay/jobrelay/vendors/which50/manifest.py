"""Which50's operation and local sandbox (jobrelay.vendors.manifest). It sends no webhooks: its
import jobs are polled (docs/VENDORS.md 3)."""

from jobrelay.domain.operation import Operation, OperationKind
from jobrelay.vendors.manifest import LocalSandbox, VendorManifest
from jobrelay.vendors.which50.params import ContactImportParams

MANIFEST = VendorManifest(
    name="which50",
    title="Which50",
    operations=(
        Operation(
            "which50.contact_import",
            "which50",
            "Import a file of contacts (JSON Lines or CSV) into a Which50 contact list (create the import "
            "job, post batches of up to 10,000, run it, follow its progress); inserted, updated and invalid "
            "counts and per-contact warnings are reported.",
            ContactImportParams,
            OperationKind.BULK_IMPORT,
            "jobrelay.vendors.which50.adapter:which50_imports",
        ),
    ),
    sandbox=LocalSandbox(
        factory="devstack.sandbox.which50:Which50Sandbox",
        default_port=3300,
        settings={"run": {"process_seconds": 5}, "test": {"process_seconds": 0.5}},
    ),
)

"""MyPreferences' operation and local sandbox (jobrelay.vendors.manifest). It sends no webhooks: its
imports are polled (docs/VENDORS.md 2)."""

from jobrelay.domain.operation import Operation, OperationKind
from jobrelay.vendors.manifest import LocalSandbox, VendorManifest
from jobrelay.vendors.mypreferences.params import BulkImportParams

MANIFEST = VendorManifest(
    name="mypreferences",
    title="MyPreferences",
    operations=(
        Operation(
            "mypreferences.bulk_import",
            "mypreferences",
            "Import a file of preference records (JSON Lines or CSV) into PossibleNOW MyPreferences "
            "(Initiate, Stage, Execute, Retrieve status, Retrieve exceptions); failed records are reported per line.",
            BulkImportParams,
            OperationKind.BULK_IMPORT,
            "jobrelay.vendors.mypreferences.adapter:mypreferences_imports",
        ),
    ),
    sandbox=LocalSandbox(
        factory="devstack.sandbox.mypreferences:MyPreferencesSandbox",
        default_port=3200,
        settings={"run": {"process_seconds": 5}, "test": {"process_seconds": 0.5}},
        # The sandbox speaks both auth schemes; the local account uses the one the docs recommend.
        secret_options={"scheme": "pnauthinfo3"},
    ),
)

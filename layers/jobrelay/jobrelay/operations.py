"""The catalogue: every vendor's manifest, and the operations they declare (what `POST /jobs` accepts
and `GET /operations` lists).

A new vendor is its package (with its manifest) and one line in VENDORS; a new operation is an entry in
its vendor's manifest. The state machine does not change (docs/adding-a-vendor.md).
"""

from jobrelay.domain.errors import InvalidRequest
from jobrelay.domain.operation import Operation
from jobrelay.vendors.manifest import VendorManifest
from jobrelay.vendors.mypreferences.manifest import MANIFEST as MYPREFERENCES
from jobrelay.vendors.pinpointe.manifest import MANIFEST as PINPOINTE
from jobrelay.vendors.which50.manifest import MANIFEST as WHICH50

VENDORS: dict[str, VendorManifest] = {manifest.name: manifest for manifest in (PINPOINTE, MYPREFERENCES, WHICH50)}

OPERATIONS: dict[str, Operation] = {op.name: op for manifest in VENDORS.values() for op in manifest.operations}


def get_operation(name: str) -> Operation:
    try:
        return OPERATIONS[name]
    except KeyError:
        raise InvalidRequest(
            f"unknown operation {name!r}",
            details={"known_operations": sorted(OPERATIONS)},
        ) from None

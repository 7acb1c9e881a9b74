"""The driver of a job: its operation's kind, over the adapter of its vendor account."""

from collections.abc import Callable
from typing import Any

from jobrelay.domain.errors import VendorRejected
from jobrelay.domain.job import Job
from jobrelay.domain.operation import OperationKind
from jobrelay.drivers.base import Driver, DriverContext
from jobrelay.operations import OPERATIONS
from jobrelay.vendors.registry import load

# Each kind's driver, by module: the bulk-import engine loads with the first import job, not at the
# steps function's cold start.
DRIVERS: dict[OperationKind, str] = {
    OperationKind.ASYNC_EXPORT: "jobrelay.drivers.async_export:AsyncExportDriver",
    OperationKind.PAGED_READ: "jobrelay.drivers.paged_read:PagedReadDriver",
    OperationKind.BULK_IMPORT: "jobrelay.drivers.bulk_import:BulkImportDriver",
}


class Drivers:
    """`adapter_for(job)`: the vendor adapter for the job's operation and account (in production
    jobrelay.vendors.registry.VendorDirectory.for_job; a scripted vendor in tests)."""

    def __init__(self, adapter_for: Callable[[Job], Any], context: DriverContext):
        self._adapter_for = adapter_for
        self._context = context

    def for_job(self, job: Job) -> Driver[Any]:
        operation = OPERATIONS.get(job.operation)
        if operation is None:  # stored by a version that had it
            raise VendorRejected(f"operation {job.operation!r} is no longer offered")
        driver: type[Driver[Any]] = load(DRIVERS[operation.kind])
        return driver(self._adapter_for(job), self._context)

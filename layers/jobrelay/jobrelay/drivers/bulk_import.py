"""Bulk imports (OperationKind.BULK_IMPORT): Start checks the records file and opens the import at the
vendor, Stage (repeated) sends the records in batches and runs the import, the job polls until the
vendor has imported them, and Collect writes the summary and the failed records. The engine is
jobrelay.services.bulk_imports; imports have no completion webhook (docs/VENDORS.md 2, 3)."""

import time
from collections.abc import Callable

from jobrelay.domain.job import Job
from jobrelay.domain.vendor_outcomes import CollectOutcome, PollOutcome
from jobrelay.drivers.base import AfterStart, Driver
from jobrelay.ports import VendorImports
from jobrelay.services.bulk_imports import STAGE_TIME_RESERVE_SECONDS, ImportSteps
from jobrelay.services.progress import vendor_name


class BulkImportDriver(Driver[VendorImports]):
    def starting_note(self, job: Job) -> str:
        return f"starting: checking the records file and opening the import at {vendor_name(job)}"

    def start(self, job: Job) -> tuple[Job, AfterStart]:
        if not job.vendor_ref:  # a retried start must not open a second import
            job = self._engine.open(job, self.vendor)
        return job, "stage"

    def stage(self, job: Job, seconds_left: Callable[[], float]) -> bool:
        """Stage until the records are done or this step's budget (STAGE_STEP_SECONDS) runs out,
        whichever the Lambda's own limit (`seconds_left`) allows."""
        step_ends = time.monotonic() + self._context.settings.stage_step_seconds

        def budget_left() -> float:
            return min(seconds_left(), step_ends - time.monotonic() + STAGE_TIME_RESERVE_SECONDS)

        return self._engine.stage(job, self.vendor, budget_left)

    def poll(self, job: Job) -> PollOutcome:
        return self.vendor.poll(job)

    def collecting_note(self, job: Job) -> str:
        return f"collecting {vendor_name(job)}'s final counts and the failed records"

    def collect(self, job: Job) -> CollectOutcome:
        return self._engine.collect(job, self.vendor)

    @property
    def _engine(self) -> ImportSteps:
        if self._context.imports is None:
            raise RuntimeError("these drivers were built without the bulk-import engine")
        return self._context.imports()

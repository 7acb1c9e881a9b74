"""Bulk imports (statemachines/job.asl.json: Start -> Stage, repeated -> poll -> Collect).

Start opens the import at the vendor. Each Stage step reads the records file from its checkpoint,
validates every record (invalid ones are reported, never sent), cuts the valid ones into the
vendor's batches and stages them one at a time, saving the checkpoint after every acknowledged
batch; it stops early when its Lambda time runs low and the state machine calls it again. When the
records are exhausted it runs the import. Collect writes the summary and the failed records.

No batch is sent twice and none is lost: before a batch goes out, its line map and the failures
read before it are stored and the batch is marked in flight; if the step dies before saving the
checkpoint, the next one asks the vendor how many records it has received and either counts the
batch as staged or sends it again (jobrelay.bulk_import.batches explains the checkpoint itself). A
vendor that cannot say what it received (Which50) gets a new import instead, staged from the
start: the one holding the doubtful batch is never run, so it imports nothing.

The run is sent once: its sending is recorded just before it leaves (not before the requests that
prepare it), and a step that finds it recorded without an answer lets SETTLE_AFTER pass and asks the
vendor whether the import has started before sending it again.

Retries follow progress (jobrelay.domain.request_retries): a batch, or the run, that the vendor
refuses with a transient error answer is sent again in the step, with backoff, on a budget of its
own; every batch acknowledged gives it back. When the step has no time left to wait, the error
leaves and the state machine retries the step with its own backoff. A batch whose answer never came
ends the step instead (the next one settles it, see above). An import fails for an unavailable
vendor only when one request keeps failing past its budget, or when no batch has been acknowledged
for STALLED_AFTER.
"""

import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from jobrelay.bulk_import.batches import cut_batches, validate_records
from jobrelay.bulk_import.records import SourceFileError, read_header, read_records, sniff
from jobrelay.domain.bulk_import import (
    Batch,
    Checkpoint,
    EndOfRecords,
    ImportState,
    ImportTotals,
    InFlight,
    RecordFailure,
    StagedBatch,
)
from jobrelay.domain.errors import (
    InvalidSource,
    JobEndedMeanwhile,
    RecordsFileChanged,
    VendorProtocolError,
    VendorRejected,
    VendorTransientError,
    VendorUnavailable,
)
from jobrelay.domain.job import Job, JobPatch, JobResult, Progress, TimelineEvent, utcnow
from jobrelay.domain.reconciliation import Reconciler, Reconciliation
from jobrelay.domain.request_retries import RequestRetry, unless_it_may_have_arrived
from jobrelay.domain.status import JobStatus
from jobrelay.domain.vendor_outcomes import CollectOutcome
from jobrelay.ports import JobStore, RecordsSource, ResultStore, ScratchStore, VendorImports
from jobrelay.services import progress as shown
from jobrelay.services.creating_calls import creating_call

logger = logging.getLogger(__name__)

SNIFF_BYTES = 64 * 1024
# Stop staging when the Lambda has less than this left: one stage request must still fit.
STAGE_TIME_RESERVE_SECONDS = 120
# Fail an import whose access token would expire before staging could reasonably end.
TOKEN_RESERVE = timedelta(minutes=10)
# A stage request whose answer never came (timeout, dropped connection) may still be processed by
# the vendor afterwards: a batch the vendor has not counted is only taken as lost this long after
# it was sent (well past any client read timeout).
SETTLE_AFTER = timedelta(minutes=3)
# Fresh imports opened because a batch's fate was unknown, before the job is failed instead.
MAX_RESTARTS = 3
# An import whose staging has not moved (no batch acknowledged) for this long fails for an unavailable
# vendor rather than trying again: long enough for several settle waits (SETTLE_AFTER) in a row.
STALLED_AFTER = timedelta(minutes=20)


class ImportSteps:
    def __init__(
        self,
        store: JobStore,
        results: ResultStore,
        scratch: ScratchStore,
        source: RecordsSource,
        now: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
        retry: RequestRetry | None = None,
    ):
        self._store = store
        self._results = results
        self._scratch = scratch
        self._source = source
        self._now = now
        self._sleep = sleep
        self._retry = retry if retry is not None else RequestRetry(sleep=sleep)

    # --- open -----------------------------------------------------------------------------------

    def open(self, job: Job, vendor: VendorImports) -> Job:
        """Check the file looks like its format, then create the import at the vendor."""
        fmt, source = job.params["format"], job.params["source"]
        try:
            etag = self._source.etag(source)
            first = self._source.first_bytes(source, SNIFF_BYTES, if_match=etag)
        except (FileNotFoundError, ValueError) as unusable:  # missing, or outside the allowed prefixes
            raise InvalidSource(str(unusable)) from None
        problem = sniff(first, fmt)
        if problem:
            raise InvalidSource(problem)
        state = ImportState(checkpoint=Checkpoint(source_etag=etag), staging_started_at=self._now(), progressed_at=self._now())
        if fmt == "csv":
            try:  # read from the file itself: a header can be longer than the sniffed sample
                state.header = read_header(self._source.open(source, if_match=etag))
            except SourceFileError as bad_header:
                raise InvalidSource(str(bad_header)) from None
        with creating_call(self._store, job, self._now):
            vendor_ref = vendor.open(job)
        updated = self._store.update(
            job.job_id,
            vendor_ref.patch(import_state=state, progress=shown.staging(job, {}, {})),
            TimelineEvent(at=self._now(), event="import_opened", detail=vendor_ref.shown()),
        )
        return updated or job

    # --- stage ----------------------------------------------------------------------------------

    def stage(self, job: Job, vendor: VendorImports, seconds_left: Callable[[], float]) -> bool:
        """Stage from the checkpoint on; True once every record is accounted for and the import
        has been run at the vendor, False when this step stopped early (call it again)."""
        state = job.import_state or ImportState()
        if state.in_flight is not None:
            job, state = self._settle_in_flight(job, vendor, state, state.in_flight)
        try:
            return self._stage_from(job, vendor, state, seconds_left)
        except SourceFileError as unreadable:  # the file as a whole, e.g. its CSV header changed
            raise InvalidSource(str(unreadable)) from None

    def _stage_from(self, job: Job, vendor: VendorImports, state: ImportState, seconds_left: Callable[[], float]) -> bool:
        pending: list[RecordFailure] = []
        progressed = False  # a batch acknowledged in this step
        for item in self._cut(job, vendor, state):
            if isinstance(item, RecordFailure):
                pending.append(item)
            elif isinstance(item, Batch):
                if state.checkpoint.already_staged(item):
                    pending.clear()
                    continue
                self._check_token(job, vendor, state)
                try:
                    state = self._stage_batch(job, vendor, state, item, pending, seconds_left)
                except VendorTransientError as failed:
                    if failed.may_have_arrived:  # its answer never came: the next step settles the batch first
                        self._check_not_stalled(state, failed)
                        return False
                    if progressed:  # refused, and no time left to wait: the next step goes on, afresh
                        return False
                    # Refused before this step got anywhere: the state machine retries the step after
                    # its own backoff. (Its count starts afresh with every Stage step that returns.)
                    raise
                progressed = True
                pending = []
                if seconds_left() < STAGE_TIME_RESERVE_SECONDS:
                    return False
            elif isinstance(item, EndOfRecords):
                self._finish_staging(job, vendor, state, item, pending, seconds_left)
                return True
        raise AssertionError("cut_batches always ends with EndOfRecords")

    def _cut(self, job: Job, vendor: VendorImports, state: ImportState):
        checkpoint = state.checkpoint
        try:
            chunks = self._source.open(
                job.params["source"], start_offset=checkpoint.resume_offset, if_match=checkpoint.source_etag
            )
        except RecordsFileChanged:
            raise InvalidSource("the records file was replaced while it was being imported") from None
        records = read_records(
            chunks,
            job.params["format"],
            start_offset=checkpoint.resume_offset,
            start_line=checkpoint.resume_line,
            header=state.header,
        )
        validated = validate_records(records, lambda data: vendor.validate(job, data))
        return cut_batches(
            validated,
            vendor.limits_for(job),
            vendor.batch_format(job),
            start=checkpoint,
            record_key=vendor.record_key,
        )

    def _stage_batch(
        self,
        job: Job,
        vendor: VendorImports,
        state: ImportState,
        batch: Batch,
        failures: list[RecordFailure],
        seconds_left: Callable[[], float],
    ) -> ImportState:
        # Everything a retry needs goes to S3 first: the batch's line map and the failures read
        # before it. Both are rewritten identically if the batch is cut again.
        self._scratch.put(job.job_id, f"lines/{batch.index:06d}.json", json.dumps(batch.lines).encode())
        state = self._with_failure_part(job, state, f"failures/{batch.index:06d}.jsonl", failures)
        in_flight = InFlight(
            index=batch.index,
            first_line=batch.first_line,
            last_end_offset=batch.last_end_offset,
            next_line=batch.next_line,
            count=batch.count,
            invalid=batch.invalid,
            excess=batch.excess,
        )

        def send() -> StagedBatch:
            state.in_flight = in_flight.model_copy(update={"sent_at": self._now()})
            self._save(job, state)
            try:
                return vendor.stage(job, batch.body, batch.count)
            except VendorTransientError as refused:
                if not refused.may_have_arrived:  # an error answer, or no connection: it did not take the batch
                    state.in_flight = None
                    self._save(job, state)
                raise

        staged = self._retry.call(
            send,
            what=f"staging batch {batch.index}",
            repeatable=unless_it_may_have_arrived,
            time_left=self._time_to_wait(seconds_left),
        )
        state = self._with_warnings(job, state, batch, staged.warnings)
        state = self._acknowledged(state, in_flight.as_batch(), self._now())
        self._save(job, state, shown.staging(job, _our_counts(state), staged.counts))
        return state

    def _with_warnings(self, job: Job, state: ImportState, batch: Batch, warnings: list[tuple[int, list[str]]]) -> ImportState:
        """Keep the vendor's warnings about single records of `batch`, with their source lines."""
        if not warnings:
            return state
        name = f"warnings/{batch.index:06d}.jsonl"
        lines = b"".join(
            _json_line({"line": batch.lines[position] if 0 <= position < len(batch.lines) else None, "warnings": texts})
            for position, texts in warnings
        )
        self._scratch.put(job.job_id, name, lines)
        parts = state.warning_parts if name in state.warning_parts else [*state.warning_parts, name]
        return state.model_copy(update={"warning_parts": parts})

    def _settle_in_flight(
        self, job: Job, vendor: VendorImports, state: ImportState, in_flight: InFlight
    ) -> tuple[Job, ImportState]:
        """A previous step died with `in_flight` sent: did the vendor get it? A batch it has not
        counted yet may still arrive (a request that timed out on our side): wait out SETTLE_AFTER
        from its sending before taking it as lost. Returns the job and its state as saved."""
        staged = state.checkpoint.staged_records
        received = self._received(job, vendor)
        if received is None:
            return self._restart(job, vendor, state, f"the vendor cannot say whether batch {in_flight.index} arrived")
        if received == staged and in_flight.sent_at is not None:
            settle_at = in_flight.sent_at + SETTLE_AFTER
            if self._now() < settle_at:
                self._sleep((settle_at - self._now()).total_seconds())
                received = self._received(job, vendor)
        if received == staged + in_flight.count:
            state = self._acknowledged(state, in_flight.as_batch(), self._now())
            outcome = "arrived"
        elif received == staged:
            state.in_flight = None
            outcome = "lost; sending it again"
        else:
            raise VendorProtocolError(
                f"the vendor has received {received} records but {staged} were staged before batch {in_flight.index} "
                f"({in_flight.count} records): cannot tell what arrived"
            )
        job = self._save(job, state)
        self._store.append_event(
            job.job_id,
            TimelineEvent(at=self._now(), event="batch_reconciled", detail={"batch": in_flight.index, "outcome": outcome}),
        )
        return job, state

    def _restart(self, job: Job, vendor: VendorImports, state: ImportState, why: str) -> tuple[Job, ImportState]:
        """Leave the vendor's import unrun and open a new one, to be staged from the first record."""
        if state.restarts >= MAX_RESTARTS:
            raise VendorProtocolError(f"{why}, and the import was already started afresh {state.restarts} times; giving up")
        abandoned = job.vendor_ref
        vendor_ref = vendor.open(job)
        fresh = ImportState(
            checkpoint=Checkpoint(source_etag=state.checkpoint.source_etag),
            header=state.header,
            staging_started_at=state.staging_started_at,
            progressed_at=self._now(),
            restarts=state.restarts + 1,
        )
        patch = vendor_ref.patch(import_state=fresh, progress=shown.staging(job, {}, {}, again=why))
        event = TimelineEvent(
            at=self._now(),
            event="import_restarted",
            detail={"reason": why, "abandoned": abandoned, "opened": vendor_ref.shown()},
        )
        updated = self._store.update(job.job_id, patch, event)
        if updated is None:
            raise JobEndedMeanwhile()
        return updated, fresh

    @staticmethod
    def _received(job: Job, vendor: VendorImports) -> int | None:
        return (vendor.poll(job).progress or Progress()).counts.get("received")

    @staticmethod
    def _acknowledged(state: ImportState, batch: Batch, at: datetime) -> ImportState:
        return state.model_copy(
            update={
                "checkpoint": state.checkpoint.after(batch),
                "in_flight": None,
                "batch_sizes": [*state.batch_sizes[: batch.index], batch.count],
                "progressed_at": at,
            }
        )

    @staticmethod
    def _time_to_wait(seconds_left: Callable[[], float]) -> Callable[[], float]:
        """The time a retry may wait in this step: what is left, less the request that follows."""
        return lambda: seconds_left() - STAGE_TIME_RESERVE_SECONDS

    def _check_not_stalled(self, state: ImportState, failed: VendorTransientError) -> None:
        since = state.progressed_at or state.staging_started_at
        if since is not None and self._now() - since >= STALLED_AFTER:
            minutes = int((self._now() - since).total_seconds() // 60)
            raise VendorUnavailable(
                f"no batch has been acknowledged for {minutes} minutes ({state.checkpoint.staged_records} records "
                f"staged); the last error: {failed}"
            ) from None

    def _finish_staging(
        self,
        job: Job,
        vendor: VendorImports,
        state: ImportState,
        end: EndOfRecords,
        failures: list[RecordFailure],
        seconds_left: Callable[[], float],
    ) -> None:
        state = self._with_failure_part(job, state, "failures/tail.jsonl", failures)
        state.checkpoint = state.checkpoint.after(end)
        self._save(job, state)
        if state.checkpoint.staged_records == 0:
            raise InvalidSource(f"the file has no valid record ({state.checkpoint.invalid_records} invalid)")
        self._check_token(job, vendor, state)
        self._run_once(job, vendor, state, self._time_to_wait(seconds_left))
        self._store.transition(
            job.job_id,
            JobStatus.RUNNING,
            TimelineEvent(
                at=self._now(),
                event="import_executed",
                detail={"staged_records": state.checkpoint.staged_records, "batches": len(state.batch_sizes)},
            ),
            # From here the vendor imports what was staged; the job waits for it, polling.
            JobPatch(
                progress=shown.waiting(
                    job, Progress(percent=None, records=_our_counts(state)), since=self._now(), on="polling", vendor_status=None
                )
            ),
        )

    def _run_once(self, job: Job, vendor: VendorImports, state: ImportState, time_left: Callable[[], float]) -> None:
        """Run the import. A run sent before whose answer never came may still reach the vendor:
        wait until SETTLE_AFTER has passed since, then ask the vendor before sending it again."""
        if state.run_sent_at is not None:
            settle_at = state.run_sent_at + SETTLE_AFTER
            if self._now() < settle_at:
                self._sleep((settle_at - self._now()).total_seconds())
            if self._retry.call(lambda: vendor.run_started(job), what="asking whether the import runs", time_left=time_left):
                return

        def send() -> None:
            # Recorded only now, as the run leaves: a failure before (a status read, a token) is no
            # reason for anyone to wait.
            state.run_sent_at = self._now()
            self._save(job, state)
            try:
                vendor.execute(job)
            except VendorTransientError as refused:
                if not refused.may_have_arrived:  # an error answer, or no connection: the run did not leave
                    state.run_sent_at = None
                    self._save(job, state)
                raise

        self._retry.call(send, what="running the import", repeatable=unless_it_may_have_arrived, time_left=time_left)

    def _with_failure_part(self, job: Job, state: ImportState, name: str, failures: list[RecordFailure]) -> ImportState:
        if not failures:
            return state
        self._scratch.put(job.job_id, name, b"".join(_failure_line(f) for f in failures))
        parts = state.failure_parts if name in state.failure_parts else [*state.failure_parts, name]
        return state.model_copy(update={"failure_parts": parts})

    def _check_token(self, job: Job, vendor: VendorImports, state: ImportState) -> None:
        expires_at = vendor.usable_until(job)
        if expires_at and self._now() >= expires_at - TOKEN_RESERVE:
            raise VendorRejected(
                f"the import's access token expires at {expires_at.isoformat()}: staging could not finish in time "
                f"(staged {state.checkpoint.staged_records} records)"
            )

    def _save(self, job: Job, state: ImportState, progress: Progress | None = None) -> Job:
        """Store `state` (and `progress`); the job as written. JobEndedMeanwhile when it has ended."""
        patch = JobPatch(import_state=state)
        if progress is not None:
            patch.progress = progress
        updated = self._store.update(job.job_id, patch)
        if updated is None:
            raise JobEndedMeanwhile()
        return updated

    # --- collect --------------------------------------------------------------------------------

    def collect(self, job: Job, vendor: VendorImports) -> CollectOutcome:
        state = job.import_state or ImportState()
        counted = {"failed_records": 0, "own_failures": 0, "warnings": 0}

        def failure_lines() -> Iterator[bytes]:
            for part in state.failure_parts:
                data = self._scratch.get(job.job_id, part)
                counted["failed_records"] += data.count(b"\n")
                counted["own_failures"] += data.count(b"\n")
                yield data
            for failure in self._vendor_failures(job, vendor, state):
                counted["failed_records"] += 1
                yield _failure_line(failure)

        def warning_lines() -> Iterator[bytes]:
            for part in state.warning_parts:
                data = self._scratch.get(job.job_id, part)
                counted["warnings"] += data.count(b"\n")
                yield data

        failed = self._results.put_stream(job.job_id, "failed_records.jsonl", failure_lines(), "application/x-ndjson")
        # Only vendors that echo warnings have parts; the others get no empty file.
        warned = (
            self._results.put_stream(job.job_id, "validation_warnings.jsonl", warning_lines(), "application/x-ndjson")
            if state.warning_parts
            else None
        )
        checkpoint = state.checkpoint
        refused = checkpoint.invalid_records + checkpoint.excess_records
        totals = ImportTotals(
            read=checkpoint.staged_records + refused,
            refused=refused,
            sent=checkpoint.staged_records,
            listed_failures=counted["failed_records"] - counted["own_failures"],
            warnings=counted["warnings"],
        )
        reconciliation = self._reconcile(job, vendor, totals)
        summary = self._summary(job, state, counted["failed_records"], counted["warnings"], reconciliation)
        summary_file = self._results.put_bytes(
            job.job_id, "summary.json", json.dumps(summary, indent=2).encode(), "application/json"
        )
        files = [
            summary_file,
            *([failed] if counted["failed_records"] else []),
            *([warned] if warned and counted["warnings"] else []),
        ]
        result = JobResult(s3_uri=summary_file.s3_uri, size=summary_file.size, sha256=summary_file.sha256, files=files)
        return CollectOutcome(result=result, reconciliation=reconciliation)

    def _reconcile(self, job: Job, vendor: VendorImports, totals: ImportTotals) -> Reconciliation:
        """Our totals against the vendor's final counts: the records we refused ourselves are a
        shortfall here; the adapter checks everything the vendor counted."""
        ours = {
            "read": totals.read,
            "refused": totals.refused,
            "sent": totals.sent,
            "failed_at_vendor": totals.listed_failures,
            "failed": totals.refused + totals.listed_failures,  # in all: what failed_records.jsonl lists
        }
        rec = Reconciler(ours=ours, vendor=job.progress.counts)
        if totals.refused:
            rec.short(f"{totals.refused} of {totals.read} records were refused before sending (see failed_records.jsonl)")
        vendor.reconcile(job, totals, rec)
        return rec.result()

    def _vendor_failures(self, job: Job, vendor: VendorImports, state: ImportState) -> Iterator[RecordFailure]:
        """The vendor's failures, with the source line of each: the vendor numbers records in the
        order they were staged, and each batch's line map says which line each came from."""
        starts, total = [], 0
        for size in state.batch_sizes:
            starts.append(total)
            total += size
        cached: tuple[int, list[int]] | None = None
        for sequence, reasons, key in vendor.failures(job):
            position = sequence - 1
            batch = _batch_of(starts, position)
            # "vendor": MyPreferences lists staging refusals and execution exceptions together.
            if batch is None or position >= total:
                yield RecordFailure(line=None, key=key, stage="vendor", reasons=[*reasons, f"(vendor record {sequence})"])
                continue
            if cached is None or cached[0] != batch:
                cached = (batch, json.loads(self._scratch.get(job.job_id, f"lines/{batch:06d}.json")))
            yield RecordFailure(line=cached[1][position - starts[batch]], key=key, stage="vendor", reasons=reasons)

    def _summary(
        self, job: Job, state: ImportState, failed_records: int, warnings: int, reconciliation: Reconciliation
    ) -> dict[str, Any]:
        counts = job.progress.counts
        checkpoint = state.checkpoint
        return {
            "job_id": job.job_id,
            "operation": job.operation,
            "vendor_status": job.vendor_status,
            "vendor": job.vendor_ref,
            "records": {
                "read": checkpoint.staged_records + checkpoint.invalid_records + checkpoint.excess_records,
                "staged": checkpoint.staged_records,
                "invalid": checkpoint.invalid_records,
                "over_vendor_limit": checkpoint.excess_records,
                "failed_total": failed_records,
            },
            "vendor_counts": counts,
            "validation_warnings": warnings,
            # True only when every count the vendor gives agrees with ours (None: it gives none to check).
            "reconciled": reconciliation.reconciled,
            "complete": reconciliation.complete,
            "reconciliation": reconciliation.model_dump(mode="json"),
            "batches": len(state.batch_sizes),
            "restarts": state.restarts,
            "timings": {
                "submitted_at": job.created_at.isoformat(),
                "staging_started_at": state.staging_started_at.isoformat() if state.staging_started_at else None,
                "collected_at": self._now().isoformat(),
            },
        }


def _batch_of(starts: list[int], position: int) -> int | None:
    from bisect import bisect_right

    index = bisect_right(starts, position) - 1
    return index if index >= 0 else None


def _our_counts(state: ImportState) -> dict[str, int]:
    """Our own counts so far, as the job's progress shows them beside the vendor's."""
    checkpoint = state.checkpoint
    refused = checkpoint.invalid_records + checkpoint.excess_records
    return {"read": checkpoint.staged_records + refused, "refused": refused, "sent": checkpoint.staged_records}


def _failure_line(failure: RecordFailure) -> bytes:
    return _json_line({"line": failure.line, "key": failure.key, "stage": failure.stage, "reasons": failure.reasons})


def _json_line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False) + "\n").encode()

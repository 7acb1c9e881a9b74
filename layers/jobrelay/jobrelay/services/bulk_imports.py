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

import bisect
import itertools
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
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
from jobrelay.services.stage_window import StageWindow

logger = logging.getLogger(__name__)

SNIFF_BYTES = 64 * 1024
# Stop staging when the Lambda has less than this left: one stage request must still fit.
STAGE_TIME_RESERVE_SECONDS = 120
# Stage bodies a step holds at once, at most: every request out at the vendor and the one being cut
# (of up to the vendor's limits_for(job).max_bytes). Staging is budgeted 256 MiB RSS (docs/DESIGN.md);
# the process is about 70 MiB before the first batch and each body held costs a little more than its
# size (bench/staging.py: 8 MyPreferences bodies of 25 MB out at once peaked at 337 MiB). So fewer
# big requests go at once than an account's stage_concurrency asks: 25 MB ones 3 at a time, not 8;
# Which50's batches of up to 10,000 contacts (about 1 MB) are not held back.
STAGE_BODIES_BYTES = 100 * 1024 * 1024
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
        if state.in_flight:
            job, state = self._settle_in_flight(job, vendor, state)
        try:
            return self._stage_from(job, vendor, state, seconds_left)
        except SourceFileError as unreadable:  # the file as a whole, e.g. its CSV header changed
            raise InvalidSource(str(unreadable)) from None

    def _stage_from(self, job: Job, vendor: VendorImports, state: ImportState, seconds_left: Callable[[], float]) -> bool:
        """Send the batches from the checkpoint on, up to the vendor's stage_concurrency at once, and
        take their answers as they come; the step ends early when its time runs short or an answer
        says it must (_Staging)."""
        staging = _Staging(job, state)
        pending: list[RecordFailure] = []
        # Room is left for the batch being cut while the others are out.
        out_bytes = STAGE_BODIES_BYTES - vendor.limits_for(job).max_bytes
        with StageWindow(vendor.stage_concurrency(job), body_bytes=out_bytes) as window:
            for item in self._cut(job, vendor, state):
                if isinstance(item, RecordFailure):
                    pending.append(item)
                elif isinstance(item, Batch):
                    # Cut before waiting for room: the next batch is ready when a request comes back.
                    while window.full_for(len(item.body)) and staging.stop is None:
                        self._take_answers(staging, window, vendor, wait_for_one=True)
                    if staging.stop is not None:
                        break
                    if not _counted_already(staging.state, item):
                        self._check_token(job, vendor, staging.state)
                        self._send(staging, window, vendor, item, pending, seconds_left)
                    pending = []
                    self._take_answers(staging, window, vendor, wait_for_one=False)
                    if staging.stop is not None or seconds_left() < STAGE_TIME_RESERVE_SECONDS:
                        break
                elif isinstance(item, EndOfRecords):
                    self._take_answers(staging, window, vendor, every_one=True)
                    self._flush(staging)
                    if staging.stop is None:
                        self._finish_staging(job, vendor, staging.state, item, pending, seconds_left)
                        return True
                    break
            self._take_answers(staging, window, vendor, every_one=True)
        self._flush(staging)
        return self._stopped(staging)

    def _flush(self, staging: "_Staging") -> None:
        """Save the acknowledgements not saved yet (see _take_answers)."""
        if staging.unsaved is not None:
            self._save(staging.job, staging.state, staging.unsaved)
            staging.unsaved = None

    def _send(
        self,
        staging: "_Staging",
        window: StageWindow,
        vendor: VendorImports,
        batch: Batch,
        failures: list[RecordFailure],
        seconds_left: Callable[[], float],
    ) -> None:
        """Everything a retry needs is stored first: the failures read before the batch, then the
        batch marked in flight; then, on the request's own thread, its line map, then the batch
        leaves (a line map not yet written means the batch has not left: the next step sends it
        again and writes it then). Both files are rewritten identically if the batch is cut again.
        A refusal answered by the vendor is sent again in the request's own retries
        (domain/request_retries.py)."""
        job = staging.job
        state = self._with_failure_part(job, staging.state, f"failures/{batch.index:06d}.jsonl", failures)
        flight = InFlight(
            index=batch.index,
            first_line=batch.first_line,
            last_end_offset=batch.last_end_offset,
            next_line=batch.next_line,
            count=batch.count,
            invalid=batch.invalid,
            excess=batch.excess,
            sent_at=self._now(),
        )
        staging.state = state.sent(flight)
        staging.lines[batch.index] = batch.lines
        self._save(job, staging.state, staging.unsaved)
        staging.unsaved = None
        line_map = json.dumps(batch.lines).encode()

        def request() -> StagedBatch:
            self._scratch.put(job.job_id, f"lines/{batch.index:06d}.json", line_map)
            return self._retry.call(
                lambda: vendor.stage(job, batch.body, batch.count),
                what=f"staging batch {batch.index}",
                repeatable=unless_it_may_have_arrived,
                time_left=self._time_to_wait(seconds_left),
            )

        window.send(flight, len(batch.body), request)

    def _take_answers(
        self,
        staging: "_Staging",
        window: StageWindow,
        vendor: VendorImports,
        *,
        wait_for_one: bool = False,
        every_one: bool = False,
    ) -> None:
        """Fold the answers that have come (all of them with `every_one`) into the import's state."""
        answers = window.all_answers() if every_one else window.answers(wait_for_one=wait_for_one)
        for answer in answers:
            batch = answer.batch
            if answer.staged is not None:
                received = answer.staged.counts.get("received")
                position = received - batch.count if received is not None else None
                state = self._with_warnings(
                    staging.job, staging.state, batch.index, staging.lines.pop(batch.index, []), answer.staged.warnings
                )
                staging.state = state.acknowledged(batch, self._now(), position)
                staging.progressed = True
                # Saved with the next batch sent (or when the step ends): one write a batch, not two.
                # Lost with the step, an acknowledgement is recovered: the batch is still in flight in
                # the stored state, and the vendor's count settles it as arrived.
                staging.unsaved = shown.staging(staging.job, _our_counts(staging.state), answer.staged.counts)
                continue
            staging.lines.pop(batch.index, None)
            error = answer.error
            if not (isinstance(error, VendorTransientError) and error.may_have_arrived) and isinstance(
                error, VendorTransientError | VendorUnavailable | VendorRejected
            ):
                # The vendor answered: it did not take the batch, so there is nothing to settle.
                staging.state = staging.state.not_sent(batch.index)
                self._save(staging.job, staging.state)
            if staging.stop is None:
                staging.stop = error

    def _stopped(self, staging: "_Staging") -> bool:
        """False (the next step goes on) or the error the step must end with."""
        error = staging.stop
        if error is None:
            return False
        if isinstance(error, VendorTransientError):
            if error.may_have_arrived:  # its answer never came: the next step settles the batch first
                self._check_not_stalled(staging.state, error)
                return False
            if staging.progressed:  # refused, and no time left to wait: the next step goes on, afresh
                return False
            # Refused before this step got anywhere: the state machine retries the step after its
            # own backoff. (Its count starts afresh with every Stage step that returns.)
        raise error

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

    def _with_warnings(
        self, job: Job, state: ImportState, index: int, lines_of_batch: list[int], warnings: list[tuple[int, list[str]]]
    ) -> ImportState:
        """Keep the vendor's warnings about single records of batch `index`, with their source lines."""
        if not warnings:
            return state
        name = f"warnings/{index:06d}.jsonl"
        lines = b"".join(
            _json_line({"line": lines_of_batch[position] if 0 <= position < len(lines_of_batch) else None, "warnings": texts})
            for position, texts in warnings
        )
        self._scratch.put(job.job_id, name, lines)
        parts = state.warning_parts if name in state.warning_parts else [*state.warning_parts, name]
        return state.model_copy(update={"warning_parts": parts})

    def _settle_in_flight(self, job: Job, vendor: VendorImports, state: ImportState) -> tuple[Job, ImportState]:
        """A previous step died with batches in flight: which did the vendor get? Its count of the
        records received says, when exactly one choice of them makes it up. Batches it has not counted
        yet may still arrive (a request that timed out on our side): unless all have arrived, wait out
        SETTLE_AFTER from the last sending before taking the others as lost. Several choices making
        up the count cannot tell (a fresh import then, as for a vendor that counts nothing); none is a
        VendorProtocolError. Returns the job and its state as saved."""
        flights = state.in_flight
        names = ", ".join(str(flight.index) for flight in flights)
        received = self._received(job, vendor)
        if received is None:
            return self._restart(job, vendor, state, f"the vendor cannot say whether batch {names} arrived")
        staged = state.staged_or_ahead
        if received != staged + sum(flight.count for flight in flights):
            sent_at = max((flight.sent_at for flight in flights if flight.sent_at is not None), default=None)
            if sent_at is not None and self._now() < sent_at + SETTLE_AFTER:
                self._sleep((sent_at + SETTLE_AFTER - self._now()).total_seconds())
                received = self._received(job, vendor)
        choices = _arrivals(flights, (received or 0) - staged)
        if not choices:
            raise VendorProtocolError(
                f"the vendor has received {received} records but {staged} were staged before batch {names} "
                f"({sum(flight.count for flight in flights)} records): cannot tell what arrived"
            )
        if len(choices) > 1:
            return self._restart(job, vendor, state, f"the vendor's count cannot tell which of batches {names} arrived")
        (arrived,) = choices
        outcomes: dict[str, str] = {}
        for flight in flights:
            if flight.index in arrived:
                # Its place among the vendor's records is known only when it was the one out.
                position = received - flight.count if len(flights) == 1 and received is not None else None
                state = state.acknowledged(flight, self._now(), position)
                outcomes[str(flight.index)] = "arrived"
            else:
                state = state.not_sent(flight.index)
                outcomes[str(flight.index)] = "lost; sending it again"
        job = self._save(job, state)
        for index, outcome in outcomes.items():
            self._store.append_event(
                job.job_id,
                TimelineEvent(at=self._now(), event="batch_reconciled", detail={"batch": int(index), "outcome": outcome}),
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
        order it received them, each batch's place in that order is known (_batch_places), and each
        batch's line map says which line each of its records came from."""
        places = _batch_places(state)
        starts = [start for start, _, _ in places]
        cached: tuple[int, list[int]] | None = None
        for sequence, reasons, key in vendor.failures(job):
            position = sequence - 1
            found = bisect.bisect_right(starts, position) - 1
            # "vendor": MyPreferences lists staging refusals and execution exceptions together.
            if found < 0 or position >= places[found][0] + places[found][1]:
                yield RecordFailure(line=None, key=key, stage="vendor", reasons=[*reasons, f"(vendor record {sequence})"])
                continue
            start, _, batch = places[found]
            if cached is None or cached[0] != batch:
                cached = (batch, json.loads(self._scratch.get(job.job_id, f"lines/{batch:06d}.json")))
            yield RecordFailure(line=cached[1][position - start], key=key, stage="vendor", reasons=reasons)

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


@dataclass
class _Staging:
    """One Stage step's staging: the import's state as last saved, the line maps of the batches out,
    whether a batch was acknowledged in this step, and the answer that stops it, if one has."""

    job: Job
    state: ImportState
    lines: dict[int, list[int]] = field(default_factory=dict)
    progressed: bool = False
    unsaved: Progress | None = None  # acknowledgements folded into `state` but not saved yet: the progress to show
    stop: BaseException | None = None


def _counted_already(state: ImportState, batch: Batch) -> bool:
    """A batch cut again that the vendor has acknowledged: in the checkpoint, or ahead of it."""
    if batch.index < state.checkpoint.next_batch_index:
        return state.checkpoint.already_staged(batch)
    return any(ahead.index == batch.index for ahead in state.acknowledged_ahead)


def _arrivals(flights: list[InFlight], received: int) -> list[set[int]]:
    """Every choice of the batches in flight whose records add up to `received` (at most two are
    looked for: one is the answer, two already cannot tell)."""
    found: list[set[int]] = []
    for size in range(len(flights) + 1):
        for chosen in itertools.combinations(flights, size):
            if sum(flight.count for flight in chosen) == received:
                found.append({flight.index for flight in chosen})
                if len(found) > 1:
                    return found
    return found


def _batch_places(state: ImportState) -> list[tuple[int, int, int]]:
    """(first vendor position, records, batch index) of each staged batch, by position. Where the
    stage answers gave no count at all, the batches sit in the order they were staged (they went
    one at a time, or the vendor numbers nothing); a batch whose place is not known (one of several
    that a crashed step left in flight) is left out, so its failures carry no line rather than a wrong one."""
    sizes = state.batch_sizes
    positions: Sequence[int | None] = state.vendor_positions
    if len(positions) != len(sizes) or all(position is None for position in positions):
        positions = list(itertools.accumulate(sizes, initial=0))[: len(sizes)]
    return sorted(
        (position, size, index)
        for index, (position, size) in enumerate(zip(positions, sizes, strict=True))
        if position is not None
    )


def _our_counts(state: ImportState) -> dict[str, int]:
    """Our own counts so far, as the job's progress shows them beside the vendor's."""
    checkpoint = state.checkpoint
    refused = checkpoint.invalid_records + checkpoint.excess_records
    return {"read": checkpoint.staged_records + refused, "refused": refused, "sent": checkpoint.staged_records}


def _failure_line(failure: RecordFailure) -> bytes:
    return _json_line({"line": failure.line, "key": failure.key, "stage": failure.stage, "reasons": failure.reasons})


def _json_line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False) + "\n").encode()

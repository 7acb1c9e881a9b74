"""Cost: what one job of each operation costs, counted on the local stack and priced at the dated
public AWS prices (bench/prices.py), next to a naive 10-second poll loop; how it grows with 10x the
records and 10x the concurrent jobs; and whether the sweeper's and GET /jobs' reads grow with the
open jobs and the page, or with every job the table keeps. Budgets (docs/DESIGN.md): a 2-hour job at
most 40 state transitions with webhooks, 120 polling; a job queued for an hour at most 5.

How the figures are made:

- counted: each operation's jobs run through the whole local stack in this process (API, Step
  Functions on moto, the steps, the vendor sandboxes, S3 and DynamoDB on moto) with every AWS call
  metered (bench/metering.py): Lambda invocations and their measured duration x template.yaml's
  memory, DynamoDB request units from the real items by AWS's sizing rules (indexes included), S3
  requests by price class, EventBridge events, Secrets Manager calls, log bytes, and the state
  transitions in each execution's history. Durations are this machine's with moto and the sandboxes
  local: a real vendor's answers take longer (the figures say how much each 100 ms adds);
- modelled: the waiting. A typical job's vendor works TYPICAL_VENDOR_SECONDS; its polls, webhook
  waits and transitions are walked on the real ASL with template.yaml's defaults (bench/cost_model.py),
  each step priced at what it was measured to use. The naive loop is the same job polling every 10 s.
  10x concurrent jobs: ten submitted at once and counted, for the first operation of each vendor (a
  concurrency limit is the vendor account's, shared by its operations; the others run three at once
  for their samples); a limit queues them, and each queued job is modelled to wait for the jobs ahead
  of it (at the typical job's length).

Sizes: BENCH_COST_RECORDS records a job (default 10,000; x10 for the growth figures). The jobs table
is emptied before each batch (bench/cost_run.StackRunner.empty_table says why).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench import prices
from bench.cost_model import NAIVE_POLL_SECONDS, Parameters, Shape, Walk, dollars, price, walk
from bench.cost_run import OPERATIONS, JobRun, StackRunner, metered_stack
from bench.metering import Usage
from bench.transitions import LowestJitter, count_transitions, queued_hour_transitions
from jobrelay.domain.backoff import BackoffPolicy
from jobrelay.operations import OPERATIONS as CATALOGUE
from jobrelay.operations import get_operation

TWO_HOURS = 2 * 3600
TYPICAL_VENDOR_SECONDS = 10 * 60
CONCURRENT = 10
# A concurrency limit is a vendor account's, shared by all its operations: ten jobs at once are run
# for the first operation of each vendor; the others run SAMPLE_JOBS at once, for their samples.
SAMPLE_JOBS = 3
# The sandbox's time over each of the concurrent jobs: long enough that all are submitted before the
# first ends, so an account's concurrency limit shows (the jobs admitted at once).
CONCURRENT_VENDOR_SECONDS = 2.5
VENDOR_LATENCY_STEP_SECONDS = 0.1  # the sensitivity shown: each 100 ms a vendor call takes
# Read growth: finished jobs beside the same open ones, then open jobs beside the same finished ones.
FINISHED = (100, 1000, 5000)  # the last past the listings' read budget (1,000 items)
OPEN = (10, 100)
RARE_OPERATION = "which50.contact_import"  # one finished job in ten (bench/cost_run.seed)
ABSENT_OPERATION = "pinpointe.segment_subscribers"  # no finished job: a filter that matches nothing
OPEN_ACCOUNT = "bench-open"
PAGE = 20  # GET /jobs' default limit


def run() -> list[str]:
    started = time.perf_counter()
    parameters = Parameters.of_template()
    lines = _transition_budgets(parameters)
    records = int(os.environ.get("BENCH_COST_RECORDS", "10000"))
    if missing := sorted(set(CATALOGUE) - set(OPERATIONS)):
        raise RuntimeError(f"no typical job for {', '.join(missing)}: add it to bench/cost_run.OPERATIONS")
    with metered_stack() as runner:
        measured: dict[str, Measured] = {}
        batches: dict[str, Measured] = {}  # vendor -> its operation's ten jobs at once
        for operation in OPERATIONS:
            vendor = get_operation(operation).vendor
            measured[operation] = _measure(runner, operation, records, SAMPLE_JOBS if vendor in batches else CONCURRENT)
            batches.setdefault(vendor, measured[operation])
        growth = _read_growth(runner)
    sweeper = growth.per_open_job_sweep
    lines += [
        f"prices: {prices.dated()} (bench/prices.py), Lambda {parameters.architecture} as template.yaml deploys it; no free tier",
        f"typical job: {records:,} records, the vendor works {TYPICAL_VENDOR_SECONDS // 60} min; each step's use counted "
        "on the local stack, the waiting walked on the ASL with template.yaml's defaults "
        f"(webhook fallback {parameters.webhook_fallback_seconds} s, polls {parameters.poll_initial_seconds} s doubling "
        f"to {parameters.poll_max_seconds} s); the sweeper's share at one sweep per {parameters.sweep_seconds} s; "
        "Lambda time as measured here, moto and the vendor sandboxes local (what a real vendor's slower answers add: "
        "'each 100 ms')",
    ]
    rows = []
    for operation, runs in measured.items():
        row = _row(operation, runs, batches[get_operation(operation).vendor], parameters, sweeper)
        rows.append(row)
        lines += row.lines()
    lines += growth.lines()
    lines.append(
        "README rows (operation | transitions | Lambda | DynamoDB | S3 | per job | naive 10-s poll | x10 records | x10 concurrent):"
    )
    lines += [row.readme() for row in rows]
    jobs = sum(len(runs.concurrent) + 1 for runs in measured.values())
    lines.append(f"the cost section took {time.perf_counter() - started:,.0f} s ({jobs} jobs on the local stack)")
    return lines


def _transition_budgets(parameters: Parameters) -> list[str]:
    fallback = parameters.webhook_fallback_seconds
    webhook = count_transitions(TWO_HOURS, lambda polls: {"next": "wait_webhook", "wait_seconds": fallback})
    policy = BackoffPolicy(parameters.poll_initial_seconds, parameters.poll_max_seconds)
    polling = count_transitions(
        TWO_HOURS, lambda polls: {"next": "wait_poll", "wait_seconds": policy.delay(polls, LowestJitter())}
    )
    return [
        f"2-hour webhook-capable job, webhook lost (worst case): {webhook} state transitions (budget 40)",
        f"2-hour poll-only job, shortest jitter (worst case): {polling} state transitions (budget 120)",
        f"a job queued for an hour: {queued_hour_transitions()} state transitions (budget 5)",
    ]


@dataclass
class Measured:
    operation: str
    concurrent: list[JobRun]  # jobs submitted at once, in the order they were served
    bigger: JobRun  # one job of 10x the records, alone
    records: int

    @property
    def overlapped(self) -> bool:
        """Every job of the batch was submitted before any of them was collected."""
        records = [record for job in self.concurrent for record in job.invocations]
        submitted = max(record.started for record in records if record.route == "POST /jobs")
        return submitted < min(record.started for record in records if record.step == "collect")

    @property
    def alone(self) -> list[JobRun]:
        """The jobs of the batch that never queued: each ran as a job alone does."""
        return [job for job in self.concurrent if job.shape().slot_parks == 0]


def _measure(runner: StackRunner, operation: str, records: int, count: int) -> Measured:
    concurrent = runner.run(operation, records, count=count, vendor_seconds=CONCURRENT_VENDOR_SECONDS)
    bigger = runner.run(operation, 10 * records)[0]
    for job in (*concurrent, bigger):
        if job.status not in ("SUCCEEDED", "PARTIAL"):
            raise RuntimeError(f"{operation}: job {job.job_id} ended {job.status} on the local stack")
    return Measured(operation, concurrent, bigger, records)


# --- the model of a typical job -----------------------------------------------------------------------


@dataclass
class Samples:
    """What each part of a job was measured to use, pooled over jobs of one operation and size."""

    parts: dict[str, list[Usage]]
    jobs: int
    client_s3_put: float  # a job's

    @classmethod
    def of(cls, runs: Sequence[JobRun]) -> Samples:
        parts: dict[str, list[Usage]] = {}
        for run in runs:
            for part, usages in run.by_part().items():
                parts.setdefault(part, []).extend(usages)
        return cls(parts, len(runs), statistics.mean(run.client_s3_put for run in runs))

    def per_job(self, part: str) -> Usage:
        """A job's use of a part it has a set number of (its API requests, the vendor's webhooks)."""
        return _total(self.parts.get(part, [])).times(1 / self.jobs)

    def per_step(self, step: str) -> Usage | None:
        """One step's use: the mean of its samples, but the median of their Lambda time (one slow
        sample, a pause of this process, says nothing of Lambda)."""
        samples = self.parts.get(step)
        if not samples:
            return None
        mean = _total(samples).times(1 / len(samples))
        mean.gb_seconds = statistics.median(sample.gb_seconds for sample in samples)
        return mean


@dataclass
class Modelled:
    usage: Usage
    walk: Walk


def _typical(
    samples: Samples,
    shape: Shape,
    parameters: Parameters,
    sweeper: Usage,
    *,
    naive: bool = False,
    queued_seconds: float = 0,
    fallback: Samples | None = None,
) -> Modelled:
    """A job of `shape` whose vendor works TYPICAL_VENDOR_SECONDS: its steps as many as the walk
    makes of each, at what each was measured to use (`fallback`'s, for a step `samples` lack), its
    API requests and webhooks as measured, the walked transitions, and the sweeper's share for as
    long as the job is open. `naive`: waiting by a 10-s poll loop instead (and no webhook)."""
    walked = walk(
        shape,
        TYPICAL_VENDOR_SECONDS,
        parameters,
        naive_poll_seconds=NAIVE_POLL_SECONDS if naive else None,
        queued_seconds=queued_seconds,
    )
    usage = Usage(transitions=walked.transitions, s3_put=samples.client_s3_put) + samples.per_job("api")
    if not naive:
        usage = usage + samples.per_job("webhook")
    for step, count in walked.steps.items():
        one = samples.per_step(step) or (fallback.per_step(step) if fallback else None)
        if one is None:
            raise RuntimeError(f"the model makes a {step!r} step the local stack never ran")
        usage = usage + one.times(count)
    usage = usage + sweeper.times(walked.seconds / parameters.sweep_seconds)
    return Modelled(usage, walked)


def _total(samples: Sequence[Usage]) -> Usage:
    total = Usage()
    for sample in samples:
        total = total + sample
    return total


@dataclass
class Row:
    operation: str
    measured: Measured
    batch: Measured  # the vendor's ten jobs at once (this operation's, or another of the vendor's)
    typical: Modelled
    naive: Modelled
    bigger: Modelled
    concurrent: list[Modelled]
    parameters: Parameters
    limit: int | None  # the account's concurrency limit, as the concurrent jobs showed it

    def _bill(self, modelled: Modelled) -> float:
        return price(modelled.usage, self.parameters).total

    def _concurrent_bill(self) -> float:
        return statistics.mean(self._bill(job) for job in self.concurrent)

    def lines(self) -> list[str]:
        usage = self.typical.usage
        bill = price(usage, self.parameters)
        biggest = sorted(bill.lines.items(), key=lambda line: -line[1])[:3]
        as_run = [job.usage() for job in self.measured.concurrent]
        as_run_mean = _total(as_run).times(1 / len(as_run))
        queue = f"{self.limit} at once, the rest queued" if self.limit else "no concurrency limit"
        if self.batch is not self.measured:
            queue += f": the vendor account's, met by {self.batch.operation}'s ten jobs"
        if not self.batch.overlapped:
            queue += "; the first job ended before the last was submitted, so a limit may show too high"
        queued_transitions = statistics.mean(job.usage.transitions for job in self.concurrent)
        # Each vendor request holds the steps function (its memory) while it waits for the answer.
        gb_second = prices.LAMBDA_GB_SECOND[self.parameters.architecture]
        steps_memory_gb = max(r.memory_mb for job in self.measured.concurrent for r in job.invocations if r.step) / 1024
        latency = gb_second.of(usage.outbound_requests * VENDOR_LATENCY_STEP_SECONDS * steps_memory_gb)
        waits = self.measured.concurrent[0].shape().waits
        naive = (
            f"   naive {NAIVE_POLL_SECONDS}-s poll loop, same job: {self.naive.usage.transitions:,.0f} transitions, "
            f"{self.naive.usage.invocations:,.0f} invocations: {dollars(self._bill(self.naive))} "
            f"({self._bill(self.naive) / bill.total:.1f}x)"
            if waits != "nothing"
            else f"   naive {NAIVE_POLL_SECONDS}-s poll loop: the same, nothing to wait for (read page by page at once)"
        )
        return [
            f"{self.operation} (waits on: {waits}): {_summary(usage)}: {dollars(bill.total)} a job "
            f"({', '.join(f'{name} {dollars(amount)}' for name, amount in biggest)})",
            naive,
            f"   x10 records ({10 * self.measured.records:,}): {_summary(self.bigger.usage)}: "
            f"{dollars(self._bill(self.bigger))} ({self._bill(self.bigger) / bill.total:.2f}x)",
            f"   x{CONCURRENT} concurrent jobs ({queue}): {queued_transitions:,.1f} transitions a job, "
            f"{dollars(self._concurrent_bill())} a job ({self._concurrent_bill() / bill.total:.2f}x)",
            f"   as the local stack ran them ({len(self.measured.concurrent)} at once, its vendor "
            f"{CONCURRENT_VENDOR_SECONDS:g} s), a job: "
            f"{_summary(as_run_mean)}: {dollars(price(as_run_mean, self.parameters).total)}; each 100 ms a vendor takes "
            f"to answer adds {dollars(latency)} to the typical job ({usage.outbound_requests:,.0f} vendor requests)",
        ]

    def readme(self) -> str:
        usage = self.typical.usage
        return (
            f"| {self.operation} | {usage.transitions:,.0f} | {usage.invocations:,.0f} invocations, {usage.gb_seconds:,.2f} GB-s "
            f"| {usage.read_units:,.1f} RRU, {usage.write_units:,.0f} WRU ({usage.index_write_units:,.0f} in indexes) "
            f"| {usage.s3_put:,.1f} PUT, {usage.s3_get:,.1f} GET | {dollars(self._bill(self.typical))} "
            f"| {dollars(self._bill(self.naive))} | {dollars(self._bill(self.bigger))} | {dollars(self._concurrent_bill())} |"
        )


def _summary(usage: Usage) -> str:
    return ", ".join(
        [
            f"{usage.transitions:,.1f} transitions",
            f"{usage.invocations:,.1f} invocations {usage.gb_seconds:,.2f} GB-s",
            f"DynamoDB {usage.read_units:,.1f} RRU {usage.write_units:,.0f} WRU ({usage.index_write_units:,.0f} in indexes)",
            f"S3 {usage.s3_put:,.1f} PUT {usage.s3_get:,.1f} GET",
            f"{usage.events:,.1f} events",
            f"{usage.secret_calls:,.1f} secret reads",
            f"logs {usage.log_bytes / 1024:,.0f} KiB",
        ]
    )


def _row(operation: str, measured: Measured, vendor_batch: Measured, parameters: Parameters, sweeper: Usage) -> Row:
    batch = Samples.of(measured.concurrent)
    alone = measured.alone or measured.concurrent
    shape = Shape(waits=alone[0].shape().waits, stage_steps=round(statistics.median(job.shape().stage_steps for job in alone)))
    typical = _typical(batch, shape, parameters, sweeper)
    # The account's limit, as the vendor's ten jobs met it: those that never parked took a slot at
    # once. That holds only if every job was submitted before the first one ended (else a later job
    # may have found a slot freed): checked (Measured.overlapped), and said when it does not hold.
    ten = vendor_batch.concurrent
    limit = len(vendor_batch.alone) if len(vendor_batch.alone) < len(ten) else None
    queue_steps = Samples.of(ten)
    concurrent = []
    for position, job in enumerate(ten):
        # Each queued behind the jobs ahead of it, in waves of `limit`, each as long as a typical job;
        # parked as often as the vendor's job in that place was; its steps this operation's.
        queued = (position // limit) * typical.walk.seconds if limit else 0
        queued_shape = Shape(shape.waits, shape.stage_steps, job.shape().slot_parks)
        concurrent.append(_typical(batch, queued_shape, parameters, sweeper, queued_seconds=queued, fallback=queue_steps))
    bigger = measured.bigger
    return Row(
        operation=operation,
        measured=measured,
        batch=vendor_batch,
        typical=typical,
        naive=_typical(batch, shape, parameters, sweeper, naive=True),
        bigger=_typical(Samples.of([bigger]), bigger.shape(), parameters, sweeper, fallback=batch),
        concurrent=concurrent,
        parameters=parameters,
        limit=limit,
    )


# --- read growth -------------------------------------------------------------------------------------


LISTINGS = {
    "GET /jobs": {},
    "?status=running": {"status": "running"},
    f"?account={OPEN_ACCOUNT}": {"account": OPEN_ACCOUNT},
    "?status=succeeded": {"status": "succeeded"},
    "?account=history&status=succeeded": {"account": "history", "status": "succeeded"},
    # No index is keyed on both: read through, up to the read budget (DynamoJobStore).
    f"?status=succeeded&operation={RARE_OPERATION} (one in ten)": {"status": "succeeded", "operation": RARE_OPERATION},
    f"?status=succeeded&operation={ABSENT_OPERATION} (none)": {"status": "succeeded", "operation": ABSENT_OPERATION},
}


@dataclass
class Reads:
    usage: Usage  # the invocation's
    jobs: int  # returned (a listing's page)

    @property
    def items(self) -> int:
        return int(self.usage.items_read)


@dataclass
class Growth:
    by_finished: dict[int, dict[str, Reads]]  # finished jobs -> what -> reads (OPEN[0] open jobs)
    by_open: dict[int, dict[str, Reads]]  # open jobs -> what -> reads (FINISHED[-1] finished jobs)
    idle_sweep: Usage  # a sweep with no open job
    per_open_job_sweep: Usage  # what each open job adds to a sweep

    def lines(self) -> list[str]:
        sizes = " vs ".join(f"{finished:,}" for finished in FINISHED)
        lines = [
            f"reads with {sizes} finished jobs in the table and {OPEN[0]} open, a page of {PAGE}: items read "
            "(RRU) and jobs returned, through the API and the sweeper function"
        ]
        for what in self.by_finished[FINISHED[0]]:
            reads = [self.by_finished[finished][what] for finished in FINISHED]
            figures = " vs ".join(f"{r.items:,} ({r.usage.read_units:g})" for r in reads)
            returned = " vs ".join(str(r.jobs) for r in reads)
            lines.append(f"   {what}: {figures}" + ("" if what == "sweep" else f"; {returned} returned"))
        few, many = OPEN
        a, b = self.by_open[few]["sweep"], self.by_open[many]["sweep"]
        lines.append(
            f"   the sweeper with {few} vs {many} open jobs ({FINISHED[-1]:,} finished): {a.items} vs {b.items} items, "
            f"{a.usage.read_units:g} vs {b.usage.read_units:g} RRU"
        )
        parameters = Parameters.of_template()
        sweeps_a_month = 30 * 24 * 3600 / parameters.sweep_seconds
        lines.append(
            f"   the sweeper: {dollars(price(self.idle_sweep.times(sweeps_a_month), parameters).total)} a month with no open job "
            f"({sweeps_a_month:,.0f} sweeps), plus {dollars(price(self.per_open_job_sweep, parameters).total)} per open job per sweep "
            "(its read and its share of the sweep's time; not the DescribeExecution a job with an execution adds, free but timed)"
        )
        return lines


def _read_growth(runner: StackRunner) -> Growth:
    runner.empty_table()
    runner.sweep()  # warm: a sweeper container that has not run yet reads its settings and makes its clients
    idle = Samples({"sweep": [runner.sweep().usage for _ in range(3)]}, 1, 0).per_step("sweep")
    assert idle is not None
    by_finished: dict[int, dict[str, Reads]] = {}
    by_open: dict[int, dict[str, Reads]] = {}
    seeded_finished = seeded_open = 0
    for finished in FINISHED:
        runner.seed(
            finished=finished - seeded_finished,
            open_jobs=OPEN[0] - seeded_open,
            rare_operation=RARE_OPERATION,
            account=OPEN_ACCOUNT,
        )
        seeded_finished, seeded_open = finished, OPEN[0]
        by_finished[finished] = _reads(runner)
    by_open[OPEN[0]] = by_finished[FINISHED[-1]]
    runner.seed(finished=0, open_jobs=OPEN[1] - OPEN[0], rare_operation=RARE_OPERATION, account=OPEN_ACCOUNT)
    by_open[OPEN[1]] = _reads(runner, listings=False)
    few, many = by_open[OPEN[0]]["sweep"].usage, by_open[OPEN[1]]["sweep"].usage
    per_open = (many + few.times(-1)).times(1 / (OPEN[1] - OPEN[0]))
    per_open.invocations = 0  # the sweep runs anyway
    per_open.gb_seconds = max(0.0, per_open.gb_seconds)  # two timings' difference: noise can make it negative
    return Growth(by_finished, by_open, idle, per_open)


def _reads(runner: StackRunner, listings: bool = True) -> dict[str, Reads]:
    found = {"sweep": Reads(runner.sweep().usage, 0)}
    if listings:
        for what, query in LISTINGS.items():
            record, answer = runner.list_jobs({**query, "limit": PAGE})
            found[what] = Reads(record.usage, len(answer["jobs"]))
    return found


if __name__ == "__main__":
    print("\n".join(run()))

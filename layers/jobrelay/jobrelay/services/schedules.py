"""Recurring jobs: the schedules the API creates, lists, reads, changes, runs now and deletes
(ScheduleService), and what the schedules function does when EventBridge Scheduler fires one
(ScheduleFirer).

A schedule's definition lives in one place, the scheduler: its expression and time zone, and the
target's Input, which names the job to submit (ScheduleDefinition). template.yaml's schedules use
the same Input. Each firing submits the job with placeholders resolved at the run's scheduled
time, under a job id derived from (schedule, scheduled time): a run delivered twice (Scheduler
delivers at least once, and retries) finds its job instead of making another. Each run is recorded
(ScheduleRuns) so that a schedule shows its last runs. A run asked for through the API ("run now")
is one more run, at the current second: it goes through the same ScheduleFirer.

A schedule template.yaml defines says so in its Input (`"defined_in": "template.yaml"`): the
template is where it is changed, and CloudFormation owns it, so through the API it can be read and
run now, never changed, paused or deleted (ScheduleDefinedInTemplate, a 409). The mark is in the
template beside the schedule itself, so a schedule added there carries it with no list to keep in
step; a schedule made through the API never has it (its Input is written by target_input).
"""

import logging
import re
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from jobrelay.api.models import (
    JobSubmission,
    ScheduleList,
    ScheduleRequest,
    ScheduleRunView,
    ScheduleUpdate,
    ScheduleView,
)
from jobrelay.domain.errors import InvalidRequest, JobConflict, ScheduleNotFound, ServiceError
from jobrelay.domain.ids import scheduled_job_id
from jobrelay.domain.job import Job, JobError, ScheduleLink, utcnow
from jobrelay.domain.operation import validation_details
from jobrelay.domain.placeholders import PlaceholderError, resolve
from jobrelay.domain.schedule import ScheduleRun, ScheduleSpec
from jobrelay.domain.schedule_expressions import parse_expression, parse_timezone, upcoming
from jobrelay.domain.status import JobStatus
from jobrelay.operations import get_operation
from jobrelay.ports import JobStore, Scheduler, ScheduleRuns
from jobrelay.services.jobs import JobService, ServiceUnavailable

logger = logging.getLogger(__name__)

# EventBridge Scheduler's context attribute: it replaces this text in the target's Input with the
# run's scheduled time (ISO 8601, UTC), the same on every delivery and retry of that run.
SCHEDULED_TIME: Final = "<aws.scheduler.scheduled-time>"
LAST_RUNS = 10
NEXT_RUNS = 5


TEMPLATE: Final = "template.yaml"


class ScheduleDefinedInTemplate(ServiceError):
    """A change to a schedule template.yaml defines: the template is the one place it changes."""

    status = 409
    code = "SCHEDULE_DEFINED_IN_TEMPLATE"

    def __init__(self, name: str):
        super().__init__(
            f"schedule {name!r} is defined in {TEMPLATE}: change, pause or delete it there and deploy the stack "
            "(through the API it can be read and run now)",
            details={"defined_in": TEMPLATE},
        )


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schedule: str  # the schedule's name: what the jobs link to and the runs are recorded under
    timezone: str = "UTC"  # the placeholders' (Scheduler does not pass its ScheduleExpressionTimezone on)
    job: JobSubmission  # params may hold placeholders
    defined_in: Literal["template.yaml"] | None = None  # written in the template only: read-only here


class ScheduleDefinition(_Input):
    """The Input of a schedule's target, as stored in the scheduler (and written in template.yaml)."""

    scheduled_time: Literal["<aws.scheduler.scheduled-time>"]


class ScheduledInvocation(_Input):
    """What the schedules function receives: the Input with the scheduled time filled in."""

    scheduled_time: AwareDatetime


def target_input(name: str, timezone: str, job: JobSubmission) -> dict[str, Any]:
    return ScheduleDefinition(schedule=name, timezone=timezone, job=job, scheduled_time=SCHEDULED_TIME).model_dump(
        mode="json", exclude_none=True
    )


def resolved_submission(job: JobSubmission, moment: datetime, timezone: tzinfo) -> JobSubmission:
    """The job to submit for a run at `moment`: placeholders resolved (PlaceholderError if one is unknown)."""
    return job.model_copy(update={"params": resolve(job.params, moment, timezone)})


# --- the API ------------------------------------------------------------------------------------


class ScheduleService:
    def __init__(
        self,
        scheduler: Scheduler,
        runs: ScheduleRuns,
        jobs: JobStore,
        now: Callable[[], datetime] = utcnow,
        firer: Callable[[], "ScheduleFirer"] | None = None,
    ):
        self._scheduler = scheduler
        self._runs = runs
        self._jobs = jobs
        self._now = now
        self._firer = firer  # built when first needed: only "run now" submits jobs

    def create(self, request: ScheduleRequest) -> ScheduleView:
        self._scheduler.create(self._checked(request))
        return self.get(request.name)

    def update(self, name: str, patch: ScheduleUpdate) -> ScheduleView:
        """Merge the patch into the schedule and check the result as `create` checks a new one:
        a change of time zone re-reads the expression and the placeholders, a change of operation
        re-validates the params. A patch that gives cron or rate replaces the expression."""
        spec = self._scheduler.get(name)
        if spec is not None and _in_template(spec):
            raise ScheduleDefinedInTemplate(name)
        current = self._view(spec, name)
        fields = current.model_dump(include=set(ScheduleRequest.model_fields), exclude_none=True)
        changes = patch.changes()
        if "cron" in changes or "rate" in changes:
            fields.pop("cron", None)
            fields.pop("rate", None)
        try:
            request = ScheduleRequest.model_validate(fields | changes)
        except ValidationError as exc:
            raise InvalidRequest("the schedule would not be valid", details=validation_details(exc)) from None
        if not self._scheduler.update(self._checked(request)):
            raise ScheduleNotFound(f"no schedule {name!r}")  # deleted meanwhile
        return self.get(name)

    def run_now(self, name: str) -> str:
        """Submit the schedule's job now, enabled or not, as a run scheduled at the current second
        (placeholders resolved then): asking twice within a second makes one job, as a redelivered
        run does. Returns the job id. InvalidRequest when the job would not be valid now (nothing
        is recorded), ServiceUnavailable when it could not be started (the run shows its FAILED job)."""
        if self._firer is None:
            raise RuntimeError("running a schedule now needs a ScheduleFirer")
        definition = self._definition(self._scheduler.get(name), name)
        invocation = ScheduledInvocation(
            schedule=name,
            timezone=definition.timezone,
            job=definition.job,
            scheduled_time=self._now().replace(microsecond=0),
        )
        run = self._firer().fire(invocation, on_demand=True)
        assert run.job_id is not None  # on demand, a run without a job raises instead
        return run.job_id

    def _checked(self, request: ScheduleRequest) -> ScheduleSpec:
        """Check everything that can be checked now and return the schedule to write. The params
        are checked against the operation with their placeholders resolved as of now, in the
        schedule's time zone: a params object that is valid then is valid at every run
        (placeholders only produce dates), unless a date range's order depends on them."""
        field, expression = ("cron", _wrapped("cron", request.cron)) if request.cron else ("rate", _wrapped("rate", request.rate))
        try:
            zone = parse_timezone(request.timezone)
        except ValueError as exc:
            raise _invalid("timezone", str(exc)) from None
        try:
            parsed = parse_expression(expression, request.timezone)
        except ValueError as exc:
            raise _invalid(field, str(exc)) from None
        now = self._now()
        if parsed.next_after(now) is None:
            raise _invalid(field, f"{expression} never fires after now")
        operation = get_operation(request.operation)
        job = request.job()
        try:
            sample = resolved_submission(job, now, zone)
        except PlaceholderError as exc:
            raise _invalid(exc.path, exc.message) from None
        try:
            operation.params_model.model_validate(sample.params)
        except ValidationError as exc:
            as_of = now.astimezone(zone).replace(microsecond=0).isoformat()
            raise InvalidRequest(
                f"params are not valid for {operation.name} (placeholders resolved as of {as_of})",
                details=validation_details(exc, prefix=("params",)),
            ) from None
        return ScheduleSpec(
            name=request.name,
            expression=expression,
            timezone=request.timezone,
            enabled=request.enabled,
            target_input=target_input(request.name, request.timezone, job),
            description=request.description,
        )

    def list(self) -> ScheduleList:
        """Every schedule of the group, without their runs (GET one for those)."""
        views = []
        now = self._now()
        for spec in self._scheduler.list():
            try:
                views.append(_view(spec, now))
            except ValueError:
                logger.warning("schedule %s is not a jobrelay schedule (its target Input is not ours)", spec.name)
        return ScheduleList(schedules=views)

    def get(self, name: str) -> ScheduleView:
        spec = self._scheduler.get(name)
        view = self._view(spec, name)
        assert spec is not None
        # Runs before the schedule was created belong to an earlier schedule of the same name. To
        # the second: a run asked for in the second it was created is scheduled at its start.
        since = spec.created_at.replace(microsecond=0) if spec.created_at else None
        runs = self._runs.latest(name, LAST_RUNS, since=since)
        return view.model_copy(update={"last_runs": [self._run_view(run) for run in runs]})

    def delete(self, name: str) -> None:
        """Its runs stay until they expire, and its jobs are not touched. A schedule of the group
        that is not jobrelay's can be deleted too; one template.yaml defines cannot."""
        spec = self._scheduler.get(name)
        if spec is not None and _in_template(spec):
            raise ScheduleDefinedInTemplate(name)
        if spec is None or not self._scheduler.delete(name):
            raise ScheduleNotFound(f"no schedule {name!r}")

    def _view(self, spec: ScheduleSpec | None, name: str) -> ScheduleView:
        """The schedule's view; ScheduleNotFound when there is none, or none of ours."""
        self._definition(spec, name)
        assert spec is not None
        return _view(spec, self._now())

    @staticmethod
    def _definition(spec: ScheduleSpec | None, name: str) -> "ScheduleDefinition":
        if spec is None:
            raise ScheduleNotFound(f"no schedule {name!r}")
        try:
            return ScheduleDefinition.model_validate(spec.target_input)
        except ValidationError:
            logger.warning("schedule %s is not a jobrelay schedule (its target Input is not ours)", name)
            raise ScheduleNotFound(f"no schedule {name!r}") from None

    def _run_view(self, run: ScheduleRun) -> ScheduleRunView:
        job = self._jobs.get(run.job_id) if run.job_id else None
        return ScheduleRunView(
            scheduled_time=run.scheduled_time,
            fired_at=run.fired_at,
            job_id=run.job_id,
            status=job.status if job else None,
            error=run.error,
        )


def _in_template(spec: ScheduleSpec) -> bool:
    """Whether template.yaml defines the schedule: its Input's mark, read from the raw Input, so that
    a template's schedule whose Input is otherwise not one we read stays read-only all the same."""
    return spec.target_input.get("defined_in") == TEMPLATE


def _wrapped(kind: str, text: str | None) -> str:
    """`0 2 * * ? *` -> `cron(0 2 * * ? *)`; an expression already written whole is kept."""
    text = (text or "").strip()
    return text if text.startswith(f"{kind}(") else f"{kind}({text})"


def _invalid(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{field}: {message}", details=[{"field": field, "message": message}])


def _view(spec: ScheduleSpec, now: datetime) -> ScheduleView:
    """The schedule as the API shows it; ValueError when its Input is not a ScheduleDefinition."""
    try:
        definition = ScheduleDefinition.model_validate(spec.target_input)
    except ValidationError as exc:
        raise ValueError(str(exc)) from None
    kind = re.match(r"\s*(cron|rate)\((.*)\)\s*$", spec.expression)
    job = definition.job
    return ScheduleView(
        name=spec.name,
        cron=kind.group(2).strip() if kind and kind.group(1) == "cron" else None,
        rate=kind.group(2).strip() if kind and kind.group(1) == "rate" else None,
        expression=spec.expression,
        timezone=spec.timezone,
        enabled=spec.enabled,
        description=spec.description,
        operation=job.operation,
        params=job.params,
        account=job.account,
        callback_url=job.callback_url,
        timeout_seconds=job.timeout_seconds,
        created_at=spec.created_at,
        updated_at=spec.updated_at,
        defined_in=definition.defined_in,
        next_run_at=_next_runs(spec, now),
    )


def _next_runs(spec: ScheduleSpec, now: datetime) -> list[datetime] | None:
    """The schedule's next times after `now`, in its time zone; None when its expression is one
    jobrelay cannot read (made outside jobrelay: `at(...)`, or a cron with L, W or #). A rate counts
    from the schedule's last change, taken as when Scheduler started counting it (the local stack's
    timer counts from when it sees the change, at most 5 s of its clock later)."""
    if not spec.enabled:
        return []
    try:
        zone = parse_timezone(spec.timezone)
        expression = parse_expression(spec.expression, spec.timezone)
    except ValueError:
        return None
    since = spec.updated_at or spec.created_at
    return [moment.astimezone(zone) for moment in upcoming(expression, now, NEXT_RUNS, since=since)]


# --- the schedules function ---------------------------------------------------------------------


class ScheduleFirer:
    """Submits a schedule's job for one run, once however often the run is delivered, and records
    the run. A run whose job cannot be valid (params, operation or time zone refused) is recorded
    with the reason and not retried: every retry would be refused the same way."""

    def __init__(
        self,
        jobs: JobService,
        store: JobStore,
        runs: ScheduleRuns,
        now: Callable[[], datetime] = utcnow,
    ):
        self._jobs = jobs
        self._store = store
        self._runs = runs
        self._now = now

    def fire(self, invocation: ScheduledInvocation, *, on_demand: bool = False) -> ScheduleRun:
        """`on_demand`: a run asked for through the API, whose caller is there to be told. A job
        that cannot be valid is refused (InvalidRequest) and no run recorded; one whose execution
        could not start is recorded, then ServiceUnavailable raised, as POST /jobs answers."""
        moment = invocation.scheduled_time
        job_id = scheduled_job_id(invocation.schedule, moment)
        error: JobError | None = None
        unavailable: ServiceUnavailable | None = None
        job = self._store.get(job_id)
        if job is None:
            try:
                job = self._submit(invocation, job_id)
            except JobConflict:  # another delivery of this run stored it first
                job = self._store.get(job_id)
            except ServiceUnavailable as exc:  # stored, but its execution did not start: it is FAILED (START_FAILED)
                job = self._store.get(job_id)
                unavailable = exc
            except InvalidRequest as exc:
                if on_demand:
                    raise
                error = JobError(code=exc.code, message=_reason(exc))
                logger.warning("schedule %s: run %s submitted no job: %s", invocation.schedule, moment, error.message)
        elif job.status is JobStatus.SUBMITTED and job.execution_arn is None:
            # An earlier delivery stored the job and stopped before starting it (or before
            # recording the start: then this is the same execution, named by the job id).
            self._jobs.start_execution(job)
        run = ScheduleRun(scheduled_time=moment, fired_at=self._now(), job_id=job.job_id if job else None, error=error)
        self._runs.record(invocation.schedule, run)
        if on_demand and unavailable is not None:
            raise unavailable
        return run

    def _submit(self, invocation: ScheduledInvocation, job_id: str) -> Job:
        try:
            zone = parse_timezone(invocation.timezone)
            submission = resolved_submission(invocation.job, invocation.scheduled_time, zone)
        except ValueError as exc:  # PlaceholderError is one: only a template's schedule can hold a bad one
            raise InvalidRequest(str(exc)) from None
        link = ScheduleLink(name=invocation.schedule, scheduled_time=invocation.scheduled_time)
        return self._jobs.submit(submission, job_id=job_id, schedule=link)


def _reason(exc: InvalidRequest) -> str:
    details = exc.details if isinstance(exc.details, list) else []
    problems = "; ".join(f"{d.get('field')}: {d.get('message')}" for d in details if isinstance(d, dict))
    return f"{exc.message} ({problems})"[:1000] if problems else exc.message[:1000]

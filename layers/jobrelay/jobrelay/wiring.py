"""The real adapters, built from the environment once per Lambda container and only when first
needed: boto3 and httpx are slow to import, and a handler module must stay cheap to load (the
cold-start budget in docs/DESIGN.md). Handlers call these functions; tests build services with fakes.

Each function's return type is the port (jobrelay.ports) or service it provides, so mypy checks that
every adapter satisfies its port. Those types, and the boto3 clients' (the mypy-boto3 stubs, a
development dependency only), are imported for the type checker alone: nothing here is imported at
run time before it is needed.
"""

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from botocore.config import Config
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_scheduler import EventBridgeSchedulerClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_stepfunctions import SFNClient

    from jobrelay.adapters.s3_results import S3ResultStore
    from jobrelay.domain.job import Job
    from jobrelay.drivers.directory import Drivers
    from jobrelay.ports import JobStore, ResultStore, ScheduleRuns, SecretStore, VendorCallLog, Workflow
    from jobrelay.services.bulk_imports import ImportSteps
    from jobrelay.services.concurrency import AccountConcurrency
    from jobrelay.services.jobs import JobService
    from jobrelay.services.notices import Notices
    from jobrelay.services.schedules import ScheduleFirer, ScheduleService
    from jobrelay.services.steps import StepRunner
    from jobrelay.services.sweeper import Sweeper
    from jobrelay.services.uploads import UploadService
    from jobrelay.services.webhooks import WebhookReceiver
    from jobrelay.settings import Settings
    from jobrelay.telemetry import Metrics
    from jobrelay.vendors.registry import VendorDirectory


@cache
def settings() -> "Settings":
    from jobrelay.settings import Settings

    return Settings.from_env()


@cache
def metrics() -> "Metrics":
    """What the services record, written as CloudWatch EMF lines (jobrelay.telemetry)."""
    from jobrelay.adapters.emf_metrics import EmfSink
    from jobrelay.telemetry import Metrics

    return Metrics(EmfSink())


# --- boto3 clients, one per service ------------------------------------------------------------


def _client_config(*, s3: bool = False) -> "Config":
    from botocore.config import Config

    # Standard retry mode with a few attempts covers throttling; timeouts keep a hung call from
    # eating the function's whole budget; presigned S3 links must be SigV4 (SigV2 is retired).
    return Config(
        retries={"mode": "standard", "max_attempts": 4},
        connect_timeout=5,
        read_timeout=30,
        signature_version="s3v4" if s3 else None,
    )


@cache
def dynamodb_client() -> "DynamoDBClient":
    import boto3

    return boto3.client("dynamodb", config=_client_config())


@cache
def s3_client() -> "S3Client":
    import boto3

    return boto3.client("s3", config=_client_config(s3=True))


@cache
def stepfunctions_client() -> "SFNClient":
    import boto3

    return boto3.client("stepfunctions", config=_client_config())


@cache
def secretsmanager_client() -> "SecretsManagerClient":
    import boto3

    return boto3.client("secretsmanager", config=_client_config())


@cache
def events_client() -> "EventBridgeClient":
    import boto3

    return boto3.client("events", config=_client_config())


@cache
def scheduler_client() -> "EventBridgeSchedulerClient":
    import boto3

    return boto3.client("scheduler", config=_client_config())


# --- adapters and services -----------------------------------------------------------------------


@cache
def job_store() -> "JobStore":
    from jobrelay.adapters.dynamodb_jobs import DynamoJobStore

    return DynamoJobStore(settings().jobs_table, dynamodb_client(), retention_days=settings().retention_days)


@cache
def vendor_call_log() -> "VendorCallLog":
    from jobrelay.adapters.dynamodb_vendor_calls import DynamoVendorCallLog

    return DynamoVendorCallLog(settings().jobs_table, dynamodb_client(), retention_days=settings().retention_days)


def cancel_at_vendor(job: "Job") -> bool:
    """Abort the job at its vendor (the API's cancel), the calls it makes kept in the job's vendor call log."""
    from jobrelay.services.vendor_calls import recording

    with recording(job.job_id, "cancel", vendor_call_log()):
        return drivers().for_job(job).cancel(job)


@cache
def result_store() -> "ResultStore":
    return _s3_results()


@cache
def _s3_results() -> "S3ResultStore":
    """The result store with its extra (put_object_at, for webhook payloads), which is no part of the port."""
    from jobrelay.adapters.s3_results import S3ResultStore

    return S3ResultStore(settings().results_bucket, s3_client(), url_seconds=settings().download_url_seconds)


@cache
def upload_service() -> "UploadService":
    from jobrelay.adapters.s3_uploads import S3Uploads
    from jobrelay.services.uploads import UploadService

    return UploadService(S3Uploads(settings().results_bucket, s3_client(), url_seconds=settings().download_url_seconds))


@cache
def workflow() -> "Workflow":
    from jobrelay.adapters.sfn_workflow import StepFunctionsWorkflow

    return StepFunctionsWorkflow(settings().state_machine_arn or "", stepfunctions_client())


@cache
def secret_store() -> "SecretStore":
    from jobrelay.adapters.secrets import SecretsManagerStore

    return SecretsManagerStore(secretsmanager_client())


@cache
def notices() -> "Notices":
    from jobrelay.adapters.eventbridge import EventBridgePublisher
    from jobrelay.services.notices import Notices

    return Notices(EventBridgePublisher(settings().event_bus_name, events_client()), secret_store(), settings())


@cache
def vendors() -> "VendorDirectory":
    from jobrelay.vendors.call_metrics import count_into
    from jobrelay.vendors.registry import VendorDirectory

    count_into(metrics())  # every vendor call counted and timed, by vendor and call
    return VendorDirectory(secret_store(), settings())


@cache
def concurrency() -> "AccountConcurrency":
    """Slots and the queue of jobs parked for them; a freed slot wakes the next parked job with
    SendTaskSuccess (the workflow), from whichever function freed it: steps, API (cancel), sweeper."""
    from jobrelay.adapters.dynamodb_slot_queue import DynamoSlotQueue
    from jobrelay.adapters.dynamodb_slots import DynamoSlots
    from jobrelay.services.concurrency import AccountConcurrency

    table, client = settings().jobs_table, dynamodb_client()
    return AccountConcurrency(DynamoSlots(table, client), job_store(), queue=DynamoSlotQueue(table, client), workflow=workflow())


@cache
def job_service(check_records_files: bool = True) -> "JobService":
    """`check_records_files`: an import's records file is looked at (s3:GetObject, which HeadObject
    needs) when the job is submitted. Only the API function may read the upload folders."""
    from jobrelay.services.jobs import JobService

    records = None
    if check_records_files:
        from jobrelay.adapters.s3_records import S3RecordsSource

        records = S3RecordsSource(s3_client(), settings().results_bucket)
    return JobService(
        job_store(),
        result_store(),
        workflow(),
        notices(),
        settings(),
        cancel_at_vendor=cancel_at_vendor,
        release_slot=lambda job: concurrency().release(job),
        records=records,
        calls=vendor_call_log(),
        metrics=metrics(),
    )


@cache
def schedule_runs() -> "ScheduleRuns":
    from jobrelay.adapters.dynamodb_schedule_runs import DynamoScheduleRuns

    return DynamoScheduleRuns(settings().jobs_table, dynamodb_client(), retention_days=settings().retention_days)


@cache
def schedule_service() -> "ScheduleService":
    from jobrelay.adapters.eventbridge_scheduler import EventBridgeScheduler
    from jobrelay.services.schedules import ScheduleService

    config = settings()
    if not (config.schedule_group and config.schedule_target_arn and config.scheduler_role_arn):
        raise RuntimeError("recurring jobs need SCHEDULE_GROUP, SCHEDULE_TARGET_ARN and SCHEDULER_ROLE_ARN")
    scheduler = EventBridgeScheduler(
        config.schedule_group, config.schedule_target_arn, config.scheduler_role_arn, scheduler_client()
    )
    return ScheduleService(scheduler, schedule_runs(), job_store(), firer=schedule_firer)  # built on first run now


@cache
def schedule_firer() -> "ScheduleFirer":
    from jobrelay.services.schedules import ScheduleFirer

    # The schedules function may not read records files (template.yaml): a scheduled import's file
    # is checked when its step opens it.
    return ScheduleFirer(job_service(check_records_files=False), job_store(), schedule_runs())


@cache
def step_runner() -> "StepRunner":
    import logging

    # httpx logs every request URL at INFO, and MyPreferences puts an import's access token in its
    # URLs: keep httpx to warnings.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    from jobrelay.services.steps import StepRunner

    return StepRunner(
        job_store(),
        workflow(),
        notices(),
        drivers().for_job,
        settings(),
        concurrency=concurrency(),
        metrics=metrics(),
        calls=vendor_call_log(),
        results=result_store(),
    )


@cache
def drivers() -> "Drivers":
    from jobrelay.drivers.base import DriverContext
    from jobrelay.drivers.directory import Drivers

    return Drivers(vendors().for_job, DriverContext(job_store(), result_store(), settings(), imports=import_engine))


@cache
def import_engine() -> "ImportSteps":
    """The bulk-import engine, built with the first import job's step (its modules are not free to load)."""
    from jobrelay.adapters.s3_records import S3RecordsSource
    from jobrelay.adapters.s3_scratch import S3Scratch
    from jobrelay.services.bulk_imports import ImportSteps

    s3, bucket = s3_client(), settings().results_bucket
    return ImportSteps(job_store(), result_store(), S3Scratch(bucket, s3), S3RecordsSource(s3, bucket))


@cache
def sweeper() -> "Sweeper":
    from jobrelay.services.sweeper import Sweeper

    return Sweeper(job_store(), workflow(), notices(), concurrency(), metrics=metrics())


@cache
def webhook_receiver() -> "WebhookReceiver":
    from jobrelay.domain.job import WebhookNotice
    from jobrelay.operations import VENDORS
    from jobrelay.services.webhooks import WebhookReceiver
    from jobrelay.vendors.registry import webhook_reader

    def parse_notice(vendor: str, body: bytes) -> WebhookNotice:
        reader = webhook_reader(vendor)
        return (reader(body) if reader else None) or WebhookNotice()

    def save_raw(key: str, body: bytes) -> str:
        return _s3_results().put_object_at(key, body, "application/json").s3_uri

    # The vendor in a webhook's URL is anyone's to write: only our vendors' names become a dimension.
    return WebhookReceiver(
        job_store(), workflow(), save_raw, parse_notice, metrics=metrics().for_vendors(VENDORS), calls=vendor_call_log()
    )

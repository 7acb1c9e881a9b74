"""The real adapters, built from the environment once per Lambda container and only when first
needed: boto3 and httpx are slow to import, and a handler module must stay cheap to load (the
cold-start budget in docs/DESIGN.md). Handlers call these functions; tests build services with fakes.
"""

from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobrelay.settings import Settings


@cache
def settings() -> "Settings":
    from jobrelay.settings import Settings

    return Settings.from_env()


@cache
def aws_client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    # Standard retry mode with a few attempts covers throttling; timeouts keep a hung call from
    # eating the function's whole budget; presigned S3 links must be SigV4 (SigV2 is retired).
    config = Config(
        retries={"mode": "standard", "max_attempts": 4},
        connect_timeout=5,
        read_timeout=30,
        signature_version="s3v4" if service == "s3" else None,
    )
    return boto3.client(service, config=config)


@cache
def job_store():
    from jobrelay.adapters.dynamodb_jobs import DynamoJobStore

    return DynamoJobStore(settings().jobs_table, aws_client("dynamodb"), retention_days=settings().retention_days)


@cache
def result_store():
    from jobrelay.adapters.s3_results import S3ResultStore

    return S3ResultStore(settings().results_bucket, aws_client("s3"), url_seconds=settings().download_url_seconds)


@cache
def upload_service():
    from jobrelay.adapters.s3_uploads import S3Uploads
    from jobrelay.services.uploads import UploadService

    return UploadService(S3Uploads(settings().results_bucket, aws_client("s3"), url_seconds=settings().download_url_seconds))


@cache
def workflow():
    from jobrelay.adapters.sfn_workflow import StepFunctionsWorkflow

    return StepFunctionsWorkflow(settings().state_machine_arn or "", aws_client("stepfunctions"))


@cache
def secret_store():
    from jobrelay.adapters.secrets import SecretsManagerStore

    return SecretsManagerStore(aws_client("secretsmanager"))


@cache
def notices():
    from jobrelay.adapters.eventbridge import EventBridgePublisher
    from jobrelay.services.notices import Notices

    return Notices(EventBridgePublisher(settings().event_bus_name, aws_client("events")), secret_store(), settings())


@cache
def vendors():
    from jobrelay.vendors.registry import VendorDirectory

    return VendorDirectory(secret_store(), settings())


@cache
def concurrency():
    from jobrelay.adapters.dynamodb_slots import DynamoSlots
    from jobrelay.services.concurrency import AccountConcurrency

    return AccountConcurrency(DynamoSlots(settings().jobs_table, aws_client("dynamodb")), job_store())


@cache
def job_service(check_records_files: bool = True):
    """`check_records_files`: an import's records file is looked at (s3:GetObject, which HeadObject
    needs) when the job is submitted. Only the API function may read the upload folders."""
    from jobrelay.services.jobs import JobService

    records = None
    if check_records_files:
        from jobrelay.adapters.s3_records import S3RecordsSource

        records = S3RecordsSource(aws_client("s3"), settings().results_bucket)
    return JobService(
        job_store(),
        result_store(),
        workflow(),
        notices(),
        settings(),
        cancel_at_vendor=lambda job: vendors().for_job(job).cancel(job),
        release_slot=lambda job: concurrency().release(job),
        records=records,
    )


@cache
def schedule_runs():
    from jobrelay.adapters.dynamodb_schedule_runs import DynamoScheduleRuns

    return DynamoScheduleRuns(settings().jobs_table, aws_client("dynamodb"), retention_days=settings().retention_days)


@cache
def schedule_service():
    from jobrelay.adapters.eventbridge_scheduler import EventBridgeScheduler
    from jobrelay.services.schedules import ScheduleService

    config = settings()
    if not (config.schedule_group and config.schedule_target_arn and config.scheduler_role_arn):
        raise RuntimeError("recurring jobs need SCHEDULE_GROUP, SCHEDULE_TARGET_ARN and SCHEDULER_ROLE_ARN")
    scheduler = EventBridgeScheduler(
        config.schedule_group, config.schedule_target_arn, config.scheduler_role_arn, aws_client("scheduler")
    )
    return ScheduleService(scheduler, schedule_runs(), job_store(), firer=schedule_firer)  # built on first run now


@cache
def schedule_firer():
    from jobrelay.services.schedules import ScheduleFirer

    # The schedules function may not read records files (template.yaml): a scheduled import's file
    # is checked when its step opens it.
    return ScheduleFirer(job_service(check_records_files=False), job_store(), schedule_runs())


@cache
def step_runner():
    import logging

    # httpx logs every request URL at INFO, and MyPreferences puts an import's access token in its
    # URLs: keep httpx to warnings.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    from jobrelay.adapters.s3_records import S3RecordsSource
    from jobrelay.adapters.s3_scratch import S3Scratch
    from jobrelay.services.bulk_imports import ImportSteps
    from jobrelay.services.steps import StepRunner

    s3, bucket = aws_client("s3"), settings().results_bucket
    imports = ImportSteps(job_store(), result_store(), S3Scratch(bucket, s3), S3RecordsSource(s3, bucket), vendors().for_job)
    return StepRunner(
        job_store(),
        result_store(),
        workflow(),
        notices(),
        vendors().for_job,
        settings(),
        imports=imports,
        concurrency=concurrency(),
    )


@cache
def sweeper():
    from jobrelay.services.sweeper import Sweeper

    return Sweeper(job_store(), workflow(), notices(), concurrency())


@cache
def webhook_receiver():
    from jobrelay.services.webhooks import WebhookReceiver
    from jobrelay.vendors.registry import webhook_parser

    def parse_notice(vendor: str, body: bytes) -> dict[str, Any]:
        parser = webhook_parser(vendor)
        notice = parser(body) if parser else None
        return _notice_dict(notice)

    def save_raw(key: str, body: bytes) -> str:
        return result_store().put_object_at(key, body, "application/json").s3_uri

    return WebhookReceiver(job_store(), workflow(), save_raw, parse_notice)


def _notice_dict(notice: Any) -> dict[str, Any]:
    if notice is None:
        return {}
    raw = notice.model_dump() if hasattr(notice, "model_dump") else dict(vars(notice))
    return {k: v for k, v in raw.items() if v is not None}


@cache
def idempotent_submit():
    """`submit({"account", "key", "submission"}, lambda_context) -> job_id`, deduplicated on (account, Idempotency-Key) with
    Powertools' idempotency utility: the same key and body within 24 h return the first job; the
    same key with a different body is refused."""
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    from jobrelay.domain.errors import IdempotencyInProgress, IdempotencyKeyReused

    persistence = DynamoDBPersistenceLayer(table_name=settings().idempotency_table, boto3_client=aws_client("dynamodb"))
    config = IdempotencyConfig(
        event_key_jmespath="[account, key]",
        payload_validation_jmespath="submission",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=24 * 3600,
    )

    @idempotent_function(data_keyword_argument="request", persistence_store=persistence, config=config)
    def submit_once(request: dict[str, Any]) -> dict[str, str]:
        from jobrelay.api.models import JobSubmission

        return {"job_id": job_service().submit(JobSubmission.model_validate(request["submission"])).job_id}

    def submit(request: dict[str, Any], lambda_context: Any = None) -> str:
        if lambda_context is not None:  # lets Powertools expire a stuck in-progress record with the invocation
            config.register_lambda_context(lambda_context)
        try:
            return submit_once(request=request)["job_id"]
        except IdempotencyValidationError:
            raise IdempotencyKeyReused("this Idempotency-Key was already used with a different request") from None
        except IdempotencyAlreadyInProgressError:
            raise IdempotencyInProgress("a request with this Idempotency-Key is still being processed") from None

    return submit

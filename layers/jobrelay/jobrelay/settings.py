"""Configuration, read once from the function's environment (set by template.yaml).

The variable names here are the template's; tests/integration/test_template.py checks that every
function gets every variable it reads.
"""

import os
from functools import cached_property

from pydantic import BaseModel, Field

from jobrelay.domain.backoff import BackoffPolicy


class Settings(BaseModel):
    jobs_table: str = Field(alias="JOBS_TABLE")
    results_bucket: str = Field(alias="RESULTS_BUCKET")
    event_bus_name: str = Field(alias="EVENT_BUS_NAME")
    secrets_prefix: str = Field(default="jobrelay/", alias="SECRETS_PREFIX")
    state_machine_arn: str | None = Field(default=None, alias="STATE_MACHINE_ARN")
    public_api_url: str | None = Field(default=None, alias="PUBLIC_API_URL")
    default_job_timeout_seconds: int = Field(default=43200, ge=1, alias="DEFAULT_JOB_TIMEOUT_SECONDS")
    webhook_fallback_seconds: int = Field(default=900, ge=1, alias="WEBHOOK_FALLBACK_SECONDS")
    poll_initial_seconds: int = Field(default=5, ge=1, alias="POLL_INITIAL_SECONDS")
    poll_max_seconds: int = Field(default=300, ge=1, alias="POLL_MAX_SECONDS")
    vendor_not_found_grace_seconds: int = Field(default=120, ge=0, alias="VENDOR_NOT_FOUND_GRACE_SECONDS")
    stage_step_seconds: int = Field(default=600, ge=1, alias="STAGE_STEP_SECONDS")
    download_url_seconds: int = Field(default=3600, ge=60, alias="DOWNLOAD_URL_SECONDS")
    retention_days: int = Field(default=90, ge=1, alias="RETENTION_DAYS")
    # Recurring jobs (the API function): the schedule group, the target its schedules invoke, the
    # role EventBridge Scheduler assumes to invoke it.
    schedule_group: str | None = Field(default=None, alias="SCHEDULE_GROUP")
    schedule_target_arn: str | None = Field(default=None, alias="SCHEDULE_TARGET_ARN")
    scheduler_role_arn: str | None = Field(default=None, alias="SCHEDULER_ROLE_ARN")
    # Callbacks over plain http and to loopback and private addresses (template parameter
    # AllowLocalCallbacks): the local stack turns it on for its listeners on 127.0.0.1; deployed
    # stacks leave it off, so a callback cannot reach into our own network.
    allow_local_callbacks: bool = Field(default=False, alias="ALLOW_LOCAL_CALLBACKS")

    @classmethod
    def from_env(cls) -> "Settings":
        fields = {f.alias for f in cls.model_fields.values() if f.alias}
        return cls.model_validate({k: v for k, v in os.environ.items() if k in fields})

    @cached_property
    def backoff(self) -> BackoffPolicy:
        return BackoffPolicy(initial_seconds=self.poll_initial_seconds, max_seconds=self.poll_max_seconds)

    def vendor_secret_name(self, vendor: str, account: str) -> str:
        return f"{self.secrets_prefix}{vendor}/{account}"

    def callback_secret_name(self, account: str) -> str:
        return f"{self.secrets_prefix}callbacks/{account}"


# The strings pydantic reads as true (so as Settings reads the variable); anything else is false.
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})


def local_callbacks_allowed() -> bool:
    """ALLOW_LOCAL_CALLBACKS read as Settings reads it, for the API's bodies: pydantic checks a
    callback_url where no Settings is at hand (a route's body, a stored schedule). Read at every
    call, as the local stack runs every function in one process and sets each one's environment per
    invocation. Anything but a true value allows nothing."""
    return os.environ.get("ALLOW_LOCAL_CALLBACKS", "").lower() in _TRUE

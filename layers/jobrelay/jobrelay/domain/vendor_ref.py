"""A vendor adapter's typed reference to a job's work at the vendor.

Each adapter declares a subclass with what its next step needs (Pinpointe's job id, an import's ids,
a result link). Fields typed `Secret` / `SecretStr` act as credentials (a vendor's result link, a
per-import access token): they are stored apart, in the job's backend-only `vendor_secrets`, so the
`vendor_ref` that API answers, timelines and result summaries show holds none of them by construction.
"""

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Secret, SecretStr, ValidationError

from jobrelay.domain.errors import VendorProtocolError
from jobrelay.domain.job import Job, JobPatch


class VendorRef(BaseModel):
    # Frozen: a changed reference is a new value, written with its patch. Unknown keys are ignored, so
    # an item written by an older version (with keys since dropped) still reads.
    model_config = ConfigDict(frozen=True, extra="ignore")

    @classmethod
    def of(cls, job: Job) -> Self:
        """The reference stored on `job`; VendorProtocolError when it does not fit (a job that never
        got one, or one of another vendor's)."""
        try:
            return cls.model_validate({**job.vendor_ref, **job.vendor_secrets})
        except ValidationError as exc:
            missing = ", ".join(".".join(map(str, error["loc"])) for error in exc.errors(include_url=False, include_input=False))
            raise VendorProtocolError(
                f"job {job.job_id} has no usable {cls.__name__} in its vendor reference ({missing})"
            ) from None

    def shown(self) -> dict[str, Any]:
        """The fields anyone may see, JSON-ready: every field but the secret ones."""
        return self.model_dump(mode="json", exclude=self._secret_fields(), exclude_none=True)

    def secrets(self) -> dict[str, Any]:
        """The secret fields, revealed, for the job item only."""
        revealed = {}
        for name in self._secret_fields():
            value = getattr(self, name)
            if value is not None:
                revealed[name] = value.get_secret_value()
        return revealed

    def patch(self, **changes: Any) -> JobPatch:
        """A JobPatch storing this reference (both halves), with `changes` to other fields of the job."""
        return JobPatch(vendor_ref=self.shown(), vendor_secrets=self.secrets(), **changes)

    def _secret_fields(self) -> set[str]:
        return {name for name in type(self).model_fields if isinstance(getattr(self, name), (Secret, SecretStr))}

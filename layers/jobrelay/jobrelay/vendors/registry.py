"""Which adapter serves which vendor, built from the account's secret.

Vendor modules are imported only when a job of theirs runs: their HTTP client stack is not free to
import, and a function that never talks to a vendor (the API) should not pay for it at cold start.
"""

from collections.abc import Callable
from importlib import import_module
from typing import Any

from jobrelay.domain.errors import VendorRejected
from jobrelay.domain.job import Job
from jobrelay.ports import SecretStore, VendorJobs
from jobrelay.settings import Settings

# vendor -> "module:factory(secret: dict, *, not_found_grace_seconds: int)".
ADAPTER_FACTORIES: dict[str, str] = {
    "pinpointe": "jobrelay.vendors.pinpointe.adapter:pinpointe_jobs",
    "mypreferences": "jobrelay.vendors.mypreferences.adapter:mypreferences_imports",
    "which50": "jobrelay.vendors.which50.adapter:which50_imports",
}
# vendor -> "module:function" that reads a webhook body into a notice (never raises). It lives
# beside the payload models, not the client, so the webhook function does not import httpx.
WEBHOOK_PARSERS: dict[str, str] = {
    "pinpointe": "jobrelay.vendors.pinpointe.api:parse_webhook",
}


def _load(reference: str) -> Callable[..., Any]:
    module, name = reference.split(":")
    return getattr(import_module(module), name)


def webhook_parser(vendor: str) -> Callable[[bytes], Any] | None:
    reference = WEBHOOK_PARSERS.get(vendor)
    return _load(reference) if reference else None


class VendorDirectory:
    """The vendor side of jobs, one adapter per (vendor, account), kept for the container's life so
    HTTP connections and the secret cache are reused across invocations."""

    def __init__(self, secrets: SecretStore, settings: Settings):
        self._secrets = secrets
        self._settings = settings
        self._adapters: dict[tuple[str, str], VendorJobs] = {}

    def for_job(self, job: Job) -> VendorJobs:
        key = (job.vendor, job.account)
        if key not in self._adapters:
            self._adapters[key] = self._build(job.vendor, job.account)
        return self._adapters[key]

    def _build(self, vendor: str, account: str) -> VendorJobs:
        if vendor not in ADAPTER_FACTORIES:
            raise VendorRejected(f"no adapter for vendor {vendor!r}")
        name = self._settings.vendor_secret_name(vendor, account)
        try:
            secret = self._secrets.get_json(name)
        except KeyError:
            raise VendorRejected(f"no credentials are configured for {vendor} account {account!r} (secret {name!r})") from None
        factory = _load(ADAPTER_FACTORIES[vendor])
        return factory(secret, not_found_grace_seconds=self._settings.vendor_not_found_grace_seconds)

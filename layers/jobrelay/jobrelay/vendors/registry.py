"""The vendor adapters, built from each account's secret, and the vendors' webhook readers, both found
through the vendors' manifests (jobrelay.operations.VENDORS).

Vendor modules are imported only when a job of theirs runs: their HTTP client stack is not free to
import, and a function that never talks to a vendor (the API) should not pay for it at cold start.
"""

from collections.abc import Callable
from importlib import import_module
from typing import Any

from jobrelay.domain.errors import VendorRejected
from jobrelay.domain.job import Job, WebhookNotice
from jobrelay.operations import OPERATIONS, VENDORS
from jobrelay.ports import SecretStore, VendorSide
from jobrelay.settings import Settings


def load(reference: str) -> Any:
    """What a manifest's "module:name" reference names."""
    module, name = reference.split(":")
    return getattr(import_module(module), name)


def webhook_reader(vendor: str) -> Callable[[bytes], WebhookNotice | None] | None:
    """The vendor's webhook reader, None when it sends no webhooks (or is not a vendor of ours)."""
    manifest = VENDORS.get(vendor)
    return load(manifest.webhook_reader) if manifest and manifest.webhook_reader else None


class VendorDirectory:
    """The vendor side of jobs: one adapter per (operation's adapter, account), kept for the container's
    life so HTTP connections and the secret cache are reused across invocations."""

    def __init__(self, secrets: SecretStore, settings: Settings):
        self._secrets = secrets
        self._settings = settings
        self._adapters: dict[tuple[str, str], VendorSide] = {}

    def for_job(self, job: Job) -> VendorSide:
        """The adapter serving the job's operation for its account; VendorRejected when there is none
        or the account has no valid secret."""
        operation = OPERATIONS.get(job.operation)
        if operation is None:
            raise VendorRejected(f"operation {job.operation!r} is no longer offered")
        key = (operation.adapter, job.account)
        if key not in self._adapters:
            self._adapters[key] = self._build(operation.adapter, job.vendor, job.account)
        return self._adapters[key]

    def _build(self, adapter: str, vendor: str, account: str) -> VendorSide:
        name = self._settings.vendor_secret_name(vendor, account)
        try:
            secret = self._secrets.get_json(name)
        except KeyError:
            raise VendorRejected(f"no credentials are configured for {vendor} account {account!r} (secret {name!r})") from None
        factory = load(adapter)
        built: VendorSide = factory(secret, not_found_grace_seconds=self._settings.vendor_not_found_grace_seconds)
        return built

"""What a vendor package publishes about itself, in its `manifest.py`: its operations, how to read its
webhooks, and its simulator for the local stack. jobrelay.operations lists every manifest; the API's
catalogue, the vendor directory (jobrelay.vendors.registry), the webhook receiver and devstack all
read them from there, so a new vendor is its package and one line in that list
(docs/adding-a-vendor.md).

References to code are "module:name" strings, loaded only when needed: a manifest must stay cheap to
import (the API function reads every manifest at cold start), and the Lambda functions never load a
sandbox (devstack/sandbox/, not shipped).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jobrelay.domain.operation import Operation


@dataclass(frozen=True)
class LocalSandbox:
    """The vendor's simulator in the local stack (devstack). Its account's secret is
    `<SecretsPrefix><vendor>/default`, made from the running sandbox's `account_secret(**secret_options)`."""

    factory: str  # "module:class", called as factory(host, port, **settings[profile])
    default_port: int
    settings: Mapping[str, Mapping[str, Any]]  # devstack profile name ("run", "test") -> factory options
    secret_options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VendorManifest:
    name: str  # the jobs' `vendor`, the prefix of its operations, its secrets' folder, its webhook path
    title: str  # as people write it
    operations: tuple[Operation, ...]
    # "module:function" reading a webhook body into a WebhookNotice, or None (never raises); beside the
    # vendor's payload models, not its client, so the webhook function does not import an HTTP client.
    # None: the vendor sends no webhooks.
    webhook_reader: str | None = None
    sandbox: LocalSandbox | None = None

    def __post_init__(self) -> None:
        for operation in self.operations:
            if operation.vendor != self.name or not operation.name.startswith(f"{self.name}."):
                raise ValueError(f"operation {operation.name!r} is not named after its vendor {self.name!r}")

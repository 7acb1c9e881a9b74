"""The vendors' manifests are the one place a vendor registers (docs/adding-a-vendor.md): what they
name must load, and the generic code must find each vendor through them alone."""

import inspect
from pathlib import Path

import pytest

from devstack.stack import VENDORS as SANDBOXES
from devstack.template import resolve_template
from jobrelay.domain.operation import OperationKind
from jobrelay.drivers.directory import DRIVERS
from jobrelay.operations import OPERATIONS, VENDORS
from jobrelay.ports import AsyncExports, PagedReads, VendorImports
from jobrelay.services.progress import vendor_name
from jobrelay.vendors.registry import load, webhook_reader

VENDOR_PACKAGES = Path(__file__).resolve().parents[2] / "layers" / "jobrelay" / "jobrelay" / "vendors"
PORT_OF_KIND = {
    OperationKind.ASYNC_EXPORT: AsyncExports,
    OperationKind.PAGED_READ: PagedReads,
    OperationKind.BULK_IMPORT: VendorImports,
}


def test_every_vendor_package_has_the_files_the_guide_lists_and_is_registered():
    packages = {p.name for p in VENDOR_PACKAGES.iterdir() if (p / "__init__.py").exists()}
    assert packages == set(VENDORS)
    for name in packages:
        assert {"manifest.py", "params.py", "api.py", "client.py", "adapter.py"} <= {
            f.name for f in (VENDOR_PACKAGES / name).iterdir()
        }


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_every_operation_names_a_loadable_factory_of_an_adapter_with_its_kinds_port(name):
    operation = OPERATIONS[name]
    assert operation.kind in DRIVERS and load(DRIVERS[operation.kind])
    factory = load(operation.adapter)
    assert list(inspect.signature(factory).parameters)[:1] == ["secret"]
    adapter_class = inspect.signature(factory).return_annotation
    if isinstance(adapter_class, str):  # a postponed annotation: resolve it in the factory's module
        adapter_class = vars(inspect.getmodule(factory))[adapter_class]
    port = PORT_OF_KIND[operation.kind]
    wanted = {n for n in dir(port) if not n.startswith("_")} | set(getattr(port, "__annotations__", {}))
    assert wanted <= {*dir(adapter_class), "max_concurrent_jobs", *getattr(adapter_class, "__annotations__", {})}, name


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_the_generic_code_knows_each_vendor_from_its_manifest(vendor):
    manifest = VENDORS[vendor]
    assert vendor_name(_job(vendor)) == manifest.title
    if manifest.sandbox is not None:
        assert SANDBOXES[vendor].title == manifest.title and load(manifest.sandbox.factory)
    if manifest.webhook_reader is not None:
        reader = webhook_reader(vendor)
        assert reader is not None and reader(b"not json") is not None  # never raises


def test_every_vendor_that_sends_webhooks_has_its_route_and_no_other_has_one():
    template = resolve_template()
    (webhooks,) = [f for f in template.functions if f.logical_id == "WebhooksFunction"]
    routes = {route.path for route in template.routes if route.function_name == webhooks.name}
    assert routes == {f"/webhooks/{name}/{{job_id}}/{{token}}" for name, m in VENDORS.items() if m.webhook_reader}


def test_every_vendor_has_its_error_rate_alarm():
    template = resolve_template()
    alarmed = {
        dimension["Value"]
        for alarm in template.of_type("AWS::CloudWatch::Alarm")
        for query in alarm.properties.get("Metrics", [])
        if query.get("MetricStat", {}).get("Metric", {}).get("MetricName") == "VendorCalls"
        for dimension in query["MetricStat"]["Metric"]["Dimensions"]
        if dimension["Name"] == "vendor"
    }
    assert alarmed == set(VENDORS)


def _job(vendor: str):
    from datetime import UTC, datetime

    from jobrelay.domain.job import Job

    return Job(job_id="job_1", operation=f"{vendor}.x", vendor=vendor, deadline_at=datetime(2030, 1, 1, tzinfo=UTC))

"""The metric sink of the functions: CloudWatch Embedded Metric Format, serialised by Powertools
(its EMF provider, which validates units and the dimension limit), one JSON line on stdout per
value. CloudWatch Logs turns each line into the metric; nothing calls the CloudWatch API.

Each value is written as it is recorded, not buffered until the end of the invocation: a step that
raises (as the steps do on purpose, for the state machine) loses none of them, and different
dimension sets need no grouping. `POWERTOOLS_METRICS_DISABLED=true` silences it, as it does
Powertools' own Metrics.
"""

import json
import os
import sys
from typing import TextIO

from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

from jobrelay.telemetry import NAMESPACE, Dimensions


class EmfSink:
    def __init__(self, namespace: str | None = None, service: str | None = None, stream: TextIO | None = None):
        self._namespace = namespace or os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE
        self._service = service or os.environ.get("POWERTOOLS_SERVICE_NAME") or NAMESPACE
        self._stream = stream

    def put(self, name: str, unit: str, value: float, dimension_sets: list[Dimensions]) -> None:
        if os.environ.get("POWERTOOLS_METRICS_DISABLED", "").strip().lower() in ("1", "true", "yes", "on"):
            return
        primary, *rollups = dimension_sets or [{}]
        # A fresh provider per value: Powertools' Metrics class shares one metric set per process.
        provider = AmazonCloudWatchEMFProvider(namespace=self._namespace, service=self._service)
        provider.add_metric(name=name, unit=unit, value=value)
        for key, dimension in primary.items():
            provider.add_dimension(name=key, value=dimension)
        for rollup in rollups:
            # Every set keeps `service`, which Powertools adds to the primary one.
            provider.dimension_sets.append({"service": self._service, **rollup})
        document = provider.serialize_metric_set(metrics=provider.metric_set, dimensions=provider.dimension_set)
        print(json.dumps(document, separators=(",", ":")), file=self._stream or sys.stdout, flush=True)

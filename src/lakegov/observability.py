"""One Logger, Tracer and Metrics for the whole service.

Powertools reads its settings (``POWERTOOLS_SERVICE_NAME``, ``POWERTOOLS_METRICS_NAMESPACE``,
``POWERTOOLS_LOG_LEVEL``, ``POWERTOOLS_TRACE_DISABLED``...) from the environment the
template sets; the defaults here keep tests and the CLI quiet and offline.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = "lakegov"
NAMESPACE = "Lakegov"

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

__all__ = ["MetricUnit", "logger", "metrics", "tracer"]


def count(name: str, value: float = 1) -> None:
    """Add a Count metric (a unit of work done, or a failure class)."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)

"""One Logger, Tracer and Metrics for the whole service.

Powertools reads its settings (``POWERTOOLS_SERVICE_NAME``, ``POWERTOOLS_METRICS_NAMESPACE``,
``POWERTOOLS_LOG_LEVEL``, ``POWERTOOLS_TRACE_DISABLED``...) from the environment the
template sets; the defaults here keep tests and the CLI quiet and offline.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = "lakegov"
NAMESPACE = "Lakegov"

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

__all__ = ["MetricUnit", "logger", "metrics", "tracer"]


_uncounted = 0  # commands running outside Lambda now (the CLI's)


@contextlib.contextmanager
def uncounted() -> Iterator[None]:
    """Counts dropped while a command runs outside Lambda: Powertools prints the metrics it
    holds to stdout, as CloudWatch's embedded format, every 100 values of one metric,
    whether metrics are disabled or not (``lakegov reprocess --json`` over a thousand files
    printed them into its JSON)."""
    global _uncounted
    _uncounted += 1
    try:
        yield
    finally:
        _uncounted -= 1


def count(name: str, value: float = 1) -> None:
    """Add a Count metric (a unit of work done, or a failure class)."""
    if _uncounted:
        return
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)

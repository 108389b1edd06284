"""Dependency fan-in: DatasetRefreshed (service bus, and the central bus) -> product starts."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from lakegov.app import get_app
from lakegov.observability import logger, metrics, tracer
from lakegov.products.service import on_dataset_refreshed
from lakegov.products.wiring import products_context


@logger.inject_lambda_context(correlation_id_path="id", clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    return on_dataset_refreshed(event.detail, products_context(get_app()))

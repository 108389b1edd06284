"""Lineage: DatasetRefreshed and ProductRunFinished -> OpenLineage run events
(lake table, LineageRecorded on the bus, Amazon DataZone when a domain is configured)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from lakegov.app import get_app
from lakegov.lineage.service import on_lakegov_event
from lakegov.lineage.wiring import lineage_context
from lakegov.observability import logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path="id", clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    return on_lakegov_event(event.detail_type, event.detail, lineage_context(get_app()))

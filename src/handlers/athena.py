"""Athena Query State Change events: advance large-file conversions handed to Athena."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from lakegov.app import get_app
from lakegov.observability import logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path="detail.queryExecutionId", clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    detail = event.detail
    outcome = get_app().athena_converter.on_state_change(
        detail["queryExecutionId"], detail["currentState"]
    )
    logger.info(
        "athena state change", extra={"outcome": outcome, "state": detail.get("currentState")}
    )
    return {"outcome": outcome}

"""Dataset events of this account's service bus, forwarded to the central bus."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from lakegov.app import get_app
from lakegov.mesh.forward import forward_event
from lakegov.observability import count, logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path="id", clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    app = get_app()
    result = forward_event(
        event.raw_event, app.central_publisher, producer_account=app.settings.account_id
    )
    count("EventsForwardedToCentralBus")
    return result

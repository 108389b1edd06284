"""Catalog queue: FileConverted events and delayed crawler starts -> Glue Data Catalog."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import SQSEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from lakegov.app import get_app
from lakegov.catalog.service import Message, parse_body, process_batch
from lakegov.catalog.wiring import catalog_services
from lakegov.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=SQSEvent)
def handler(event: SQSEvent, context: LambdaContext) -> dict[str, Any]:
    messages = [Message(r.message_id, parse_body(r.body)) for r in event.records]
    return process_batch(messages, catalog_services(get_app())).response()

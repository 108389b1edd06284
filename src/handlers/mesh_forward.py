"""Mesh-forward queue: an SQS batch of this account's dataset events -> the central bus.

The batch's copies share PutEvents calls; a message whose copy the central bus refused is
reported in ``batchItemFailures`` so it alone is delivered again (and dead-lettered after
a few receives); one that cannot be forwarded at all is logged and dropped.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes import SQSEvent
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from lakegov.app import get_app
from lakegov.mesh.forward import forward_messages
from lakegov.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    app = get_app()
    outcomes = forward_messages(
        ((r.message_id, r.body) for r in SQSEvent(event).records),
        app.central_publisher,
        producer_account=app.settings.account_id,
    )

    def record_outcome(record: SQSRecord) -> str:
        outcome = outcomes[record.message_id]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome.status

    # a processor per invocation: it holds the batch's state, and the embedded runtime runs
    # several invocations of this function at once in one process
    processor = BatchProcessor(event_type=EventType.SQS)
    response = process_partial_response(
        event=event, record_handler=record_outcome, processor=processor, context=context
    )
    return dict(response)

"""Mesh-forward queue: an SQS batch of this account's dataset events -> the central bus.

The batch's copies share PutEvents calls; a message whose copy the central bus refused is
reported in ``batchItemFailures`` so it alone is delivered again (and dead-lettered after
a few receives); one that cannot be forwarded at all is logged and dropped.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import SQSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from lakegov.app import get_app
from lakegov.mesh.forward import forward_messages
from lakegov.observability import logger, metrics, tracer
from lakegov.sqs_batch import partial_batch_response


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

    return partial_batch_response(event, outcomes, context)

"""Lineage queue: an SQS batch of DatasetRefreshed and ProductRunFinished -> OpenLineage run
events (lake table, LineageRecorded on the bus, Amazon DataZone when a domain is configured).

The batch's run events share one lake object per day and PutEvents calls; a message whose
run events could not be recorded is reported in ``batchItemFailures`` so it alone is
delivered again (and dead-lettered after a few receives); one that lineage is not told by
is logged and dropped. An event handed over directly, not in a batch (the rule of a stack
deployed before lineage read a queue, while that stack is updated), is recorded alone.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import SQSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from lakegov.app import get_app
from lakegov.lineage.service import record_invoked, record_messages
from lakegov.lineage.wiring import lineage_context
from lakegov.observability import logger, metrics, tracer
from lakegov.sqs_batch import partial_batch_response


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" not in event:
        return record_invoked(event, lineage_context(get_app()))
    outcomes = record_messages(
        ((r.message_id, r.body) for r in SQSEvent(event).records), lineage_context(get_app())
    )
    return partial_batch_response(event, outcomes, context)

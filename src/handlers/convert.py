"""Landed files: an SQS batch of S3 "Object Created" EventBridge events -> Parquet (or a
batch of stored objects from the reprocess state machine's Distributed Map).

Each record is its own unit of work; a failing record is reported in
``batchItemFailures`` so it alone is retried (and dead-lettered after a few receives).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from lakegov.app import get_app
from lakegov.ingest.service import convert_records
from lakegov.observability import logger, metrics, tracer
from lakegov.reprocess.runs import is_map_batch
from lakegov.reprocess.wiring import reprocess_batch


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if is_map_batch(event):  # `lakegov reprocess`: a batch of the Distributed Map
        return reprocess_batch(event, get_app(), context.get_remaining_time_in_millis)
    # the whole batch is converted first, so that its FileConverted events share PutEvents
    # calls; each record's outcome (or failure) is then reported by the batch processor
    outcomes = convert_records(get_app().converter, event.get("Records") or [])

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

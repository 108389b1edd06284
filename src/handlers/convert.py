"""Landed files: an SQS batch of S3 "Object Created" EventBridge events -> Parquet (or a
batch of stored objects from the reprocess state machine's Distributed Map).

Each record is its own unit of work; a failing record is reported in
``batchItemFailures`` so it alone is retried (and dead-lettered after a few receives).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from lakegov.app import get_app
from lakegov.ingest.service import convert_records
from lakegov.observability import logger, metrics, tracer
from lakegov.reprocess.runs import is_map_batch
from lakegov.reprocess.wiring import reprocess_batch
from lakegov.sqs_batch import partial_batch_response


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if is_map_batch(event):  # `lakegov reprocess`: a batch of the Distributed Map
        return reprocess_batch(event, get_app(), context.get_remaining_time_in_millis)
    # the whole batch is converted first, so that its FileConverted events share PutEvents
    # calls; each record's outcome (or failure) is then reported by the batch processor
    outcomes = convert_records(get_app().converter, event.get("Records") or [])

    return partial_batch_response(event, outcomes, context)

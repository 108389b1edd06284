"""Lambda's partial batch response for an SQS batch whose records were handled together.

A function that handles a whole batch at once (so that its events share calls) knows each
record's outcome by message id; the batch processor then reports the records whose outcome
is an exception in ``batchItemFailures``, so SQS delivers those again, alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord


def partial_batch_response(
    event: dict[str, Any], outcomes: Mapping[str, Any], context: Any
) -> dict[str, Any]:
    """``event``'s batch response: each record's outcome (an object with a ``status``) by
    message id, or the exception that fails the record."""

    def record_outcome(record: SQSRecord) -> str:
        outcome = outcomes[record.message_id]
        if isinstance(outcome, Exception):
            raise outcome
        return str(outcome.status)

    # a processor per invocation: it holds the batch's state, and the embedded runtime runs
    # several invocations of one function at once in one process
    processor = BatchProcessor(event_type=EventType.SQS)
    response = process_partial_response(
        event=event, record_handler=record_outcome, processor=processor, context=context
    )
    return dict(response)

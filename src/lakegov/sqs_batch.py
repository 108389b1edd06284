"""SQS batches handled together: the EventBridge event a record carries, and Lambda's
partial batch response.

A rule whose target is a queue sends each matching event as the body of one message; a
function that handles a whole batch at once (so that its events share calls) knows each
record's outcome by message id; the batch processor then reports the records whose outcome
is an exception in ``batchItemFailures``, so SQS delivers those again, alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from lakegov.errors import PermanentError


def eventbridge_event(body: str) -> Mapping[str, Any]:
    """A queue message's body as the EventBridge event the rule sent (PermanentError if it
    is not one)."""
    try:
        event = json.loads(body)
    except ValueError as exc:
        raise PermanentError(f"not an EventBridge event: the body is not JSON ({exc})") from exc
    if not isinstance(event, dict) or not {"source", "detail-type", "detail"} <= event.keys():
        raise PermanentError(
            "not an EventBridge event: the body has no source, detail-type and detail"
        )
    if not isinstance(event["detail"], dict):
        raise PermanentError("not an EventBridge event: its detail is not an object")
    resources = event.get("resources") or []
    if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
        raise PermanentError("not an EventBridge event: its resources are not a list of ARNs")
    return event


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

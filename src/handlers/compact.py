"""Compaction: on its schedule, and after every reprocess (the rerun state machine)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from lakegov.app import get_app
from lakegov.compaction.wiring import compact_all
from lakegov.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return compact_all(get_app(), context.get_remaining_time_in_millis)

"""Run state: CodeBuild, Step Functions, ECS and local-runner state changes -> run audit,
events, alarms and retries; on its schedule, the sweep (MWAA polling, stuck starts,
pending retries, schedule fallbacks)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from lakegov.app import get_app
from lakegov.observability import logger, metrics, tracer
from lakegov.products.service import on_run_state_change, sweep
from lakegov.products.wiring import products_context
from lakegov.runners import codebuild, dbt_duckdb, ecs, stepfunctions

PARSERS = (
    codebuild.parse_event,
    stepfunctions.parse_event,
    ecs.parse_event,
    dbt_duckdb.parse_event,
)


@logger.inject_lambda_context(correlation_id_path="id", clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    if event.detail_type == "Scheduled Event":
        return {"swept": sweep(products_context(get_app()))}
    raw = event.raw_event
    for parse in PARSERS:
        change = parse(raw)
        if change is not None:
            return on_run_state_change(change, products_context(get_app()))
    logger.warning("not a runner state change", extra={"source": event.source})
    return {"status": "IGNORED"}

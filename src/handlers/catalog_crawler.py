"""Glue Crawler State Change (Succeeded / Failed) -> DatasetRefreshed, or audit + metric."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from lakegov.app import get_app
from lakegov.catalog.crawler import CrawlLedger, handle_crawler_state
from lakegov.observability import logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path="id", clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    app = get_app()
    outcome = handle_crawler_state(
        event.detail,
        event_id=event.get_id,
        glue=app.client("glue"),
        ledger=CrawlLedger(app.settings.audit_table, app.client("dynamodb")),
        audit=app.audit,
        settings=app.settings,
        publish=app.publisher.publish,
    )
    if outcome is None:
        return {"status": "ignored"}
    return {"status": outcome.state, "crawler": outcome.crawler, "batch": outcome.batch_id}

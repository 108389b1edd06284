"""Central account: a consumer domain's AccessLinked report -> the audit table."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from lakegov.app import get_app
from lakegov.mesh.sharing import record_access_report
from lakegov.observability import count, logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path="id", clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    outcome = record_access_report(get_app().audit, event.detail, event.get_id, event.account)
    count(f"SharedAccess{outcome['status'].title().replace('_', '')}")
    if not outcome["status"].endswith("_DONE"):
        logger.warning("a domain could not complete a share", extra=outcome)
    return outcome

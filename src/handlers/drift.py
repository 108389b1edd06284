"""Scheduled: does Lake Formation still match the governance documents in force?"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from lakegov.app import get_app
from lakegov.governance.drift_job import check_drift
from lakegov.governance.guardrails import guardrails_from
from lakegov.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    app = get_app()
    return check_drift(
        s3=app.client("s3"),
        config_bucket=app.settings.config_bucket,
        audit=app.audit,
        lakeformation=app.client("lakeformation"),
        glue=app.client("glue"),
        publisher=app.publisher,
        catalog_id=app.settings.account_id,
        guardrails=guardrails_from(app.settings),
        reconcile=app.settings.drift_reconcile,
    )

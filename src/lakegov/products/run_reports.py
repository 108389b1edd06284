"""What the end of a product run reports besides its state, audit and events.

:func:`record_in_lake` writes its models as ``audit_control`` rows and its dbt tests as
``test_results`` rows in the lake; :func:`alarm_failed_run` logs a failed run and publishes
an alarm (with what follows: a retry, or none left) to the alarm topic. Both are called by
:func:`lakegov.products.service.finish_run`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from lakegov.aws import error_code
from lakegov.events import utc_now
from lakegov.layout import AUDIT_CONTROL_TABLE, TEST_RESULTS_TABLE
from lakegov.observability import count, logger
from lakegov.products.artifacts import RunArtifacts
from lakegov.products.context import ProductsContext


def record_in_lake(
    ctx: ProductsContext,
    name: str,
    run_id: str,
    runner: str,
    run: Mapping[str, Any],
    rows: list[Any],
    artifacts: RunArtifacts,
) -> None:
    """The run's models as ``audit_control`` rows and its dbt tests as ``test_results`` rows.

    Partitioned by the day the run started (the same for every delivery of its end), one
    object per run: a duplicate end rewrites the same objects.
    """
    if ctx.records is None:
        return
    day_of = str(run.get("started_at") or utc_now())
    recorded_at = utc_now()
    common = {"run_id": run_id, "product": name, "runner": runner, "recorded_at": recorded_at}
    models = [{**r.fields, "unique_id": r.unique_id, **common} for r in rows]
    ctx.records.write(AUDIT_CONTROL_TABLE, day_of, (name, run_id), models)
    tests = [{**t.to_dict(), **common} for t in ctx.dbt.tests(artifacts)]
    ctx.records.write(TEST_RESULTS_TABLE, day_of, (name, run_id), tests)


def alarm_failed_run(
    ctx: ProductsContext,
    name: str,
    run_id: str,
    status: str,
    reason: str | None,
    attempt: int,
    max_attempts: int,
    will_retry: bool,
    retry_selection: list[str],
) -> None:
    if will_retry:
        what = ", ".join(retry_selection) or "the same selection"
        follow_up = f"retrying {what} (failed models and children), attempt {attempt + 1}"
    else:
        follow_up = f"no retry left after attempt {attempt}; waiting for a new refresh"
    follow_up += f" (max_attempts {max_attempts})"
    logger.error(
        "product run failed",
        extra={"product": name, "run_id": run_id, "status": status, "reason": reason},
    )
    if not (ctx.sns and ctx.alarm_topic_arn):
        return
    message = {
        "product": name,
        "run_id": run_id,
        "status": status,
        "reason": reason,
        "attempt": attempt,
        "max_attempts": max_attempts,
        "follow_up": follow_up,
        "environment": ctx.environment,
    }
    try:
        ctx.sns.publish(
            TopicArn=ctx.alarm_topic_arn,
            Subject=f"lakegov: product {name} run {status}"[:100],
            Message=json.dumps(message, indent=2, default=str),
        )
    except ClientError as exc:
        # The run is already audited and evented; a lost alarm must not redo the run's end.
        logger.error("alarm publish failed", extra={"code": error_code(exc)})
        count("AlarmPublishFailures")

"""AWS Step Functions runner: ``StartExecution`` of a state machine that runs dbt.

The execution input is the job contract as JSON (:func:`lakegov.runners.base.job_input`),
plus the product's ``runner.input``; the execution name is the run's idempotency token, so a
repeated start of the same run cannot start a second execution (the same input hands back
the running execution; a closed one or other input is ``ExecutionAlreadyExists``, and the
runner then returns that execution's ARN). Its end arrives as a
"Step Functions Execution Status Change" event.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from lakegov.aws import error_code, is_transient
from lakegov.errors import PermanentError, RetryableError
from lakegov.runners.base import (
    FAILED,
    RUNNING,
    STOPPED,
    SUCCEEDED,
    TIMED_OUT,
    RunRequest,
    RunStateChange,
    RunStatus,
    job_input,
)

NAME = "stepfunctions"
EVENT_SOURCE = "aws.states"
EVENT_DETAIL_TYPE = "Step Functions Execution Status Change"
STATE_MAP = {
    "RUNNING": RUNNING,
    "PENDING_REDRIVE": RUNNING,
    "SUCCEEDED": SUCCEEDED,
    "FAILED": FAILED,
    "TIMED_OUT": TIMED_OUT,
    "ABORTED": STOPPED,
}
_PERMANENT = {
    "StateMachineDoesNotExist",
    "StateMachineDeleting",
    "InvalidArn",
    "InvalidName",
    "InvalidExecutionInput",
    "ValidationException",
    "AccessDeniedException",
}


def map_state(status: str, error: str | None = None, cause: str | None = None) -> RunStatus:
    state = STATE_MAP.get(status.upper(), FAILED)
    reason = None
    if state not in (RUNNING, SUCCEEDED):
        reason = ": ".join(p for p in (error, cause) if p) or f"execution {status}"
    return RunStatus(state, reason[:1000] if reason else None, status)


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN of the execution ``name`` of a state machine (``...:stateMachine:M`` ->
    ``...:execution:M:name``)."""
    prefix, sep, machine = state_machine_arn.rpartition(":stateMachine:")
    if not sep:
        raise PermanentError(f"not a state machine ARN: {state_machine_arn}")
    return f"{prefix}:execution:{machine}:{name}"


@dataclass
class StepFunctionsRunner:
    sfn: Any
    name: str = NAME

    def start(self, request: RunRequest) -> str:
        arn = str(request.settings["state_machine_arn"])
        body = {**dict(request.settings.get("input") or {}), **job_input(request)}
        try:
            response = self.sfn.start_execution(
                stateMachineArn=arn, name=request.token, input=json.dumps(body, default=str)
            )
        except ClientError as exc:
            code = error_code(exc)
            if code == "ExecutionAlreadyExists":
                # The name is the run's own token: this run's execution exists (a resumed
                # start after it ended, or with other input). Hand it back; the caller
                # describes it rather than starting a second one.
                return execution_arn(arn, request.token)
            if code in _PERMANENT:
                raise PermanentError(f"StartExecution on {arn}: {code}") from exc
            if is_transient(exc) or code == "ExecutionLimitExceeded":
                raise RetryableError(f"StartExecution on {arn}: {code}") from exc
            raise
        return str(response["executionArn"])

    def describe(self, external_id: str, settings: Mapping[str, Any]) -> RunStatus:
        execution = self.sfn.describe_execution(executionArn=external_id)
        return map_state(
            str(execution.get("status", "")), execution.get("error"), execution.get("cause")
        )


def parse_event(event: Mapping[str, Any]) -> RunStateChange | None:
    if event.get("source") != EVENT_SOURCE or event.get("detail-type") != EVENT_DETAIL_TYPE:
        return None
    detail = event.get("detail") or {}
    status = map_state(str(detail.get("status", "")), detail.get("error"), detail.get("cause"))
    return RunStateChange(
        NAME,
        str(detail.get("executionArn", "")),
        status,
        at=event.get("time"),
        details={"state_machine": detail.get("stateMachineArn")},
    )

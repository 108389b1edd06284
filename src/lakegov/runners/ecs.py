"""Amazon ECS runner: ``RunTask`` of a task definition whose container runs dbt.

The dbt container receives the job contract as environment overrides (plus the product's
``runner.environment``). Tasks are started with ``startedBy = "lakegov"`` so that the
template's rule only forwards their "ECS Task State Change" events; a task ends
``SUCCEEDED`` when its dbt container exits 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import ClientError

from lakegov.aws import error_code, is_transient
from lakegov.errors import PermanentError, RetryableError
from lakegov.runners.base import (
    FAILED,
    RUNNING,
    STOPPED,
    SUCCEEDED,
    RunRequest,
    RunStateChange,
    RunStatus,
    job_environment,
)

NAME = "ecs"
DEFAULT_CONTAINER = "dbt"
STARTED_BY = "lakegov"
EVENT_SOURCE = "aws.ecs"
EVENT_DETAIL_TYPE = "ECS Task State Change"
_PERMANENT = {"ClusterNotFoundException", "InvalidParameterException", "AccessDeniedException"}
_RETRYABLE_FAILURES = {"RESOURCE:CPU", "RESOURCE:MEMORY", "RESOURCE:ENI", "AGENT"}


def map_task(task: Mapping[str, Any], container_name: str | None = None) -> RunStatus:
    """A task (DescribeTasks item or state-change detail) as a run status."""
    last = str(task.get("lastStatus", ""))
    if last != "STOPPED":
        return RunStatus(RUNNING, None, last)
    containers = list(task.get("containers") or [])
    # The dbt container decides; events do not say which it is: "dbt" by convention,
    # else the first container that failed, else the first.
    wanted = container_name or DEFAULT_CONTAINER
    chosen = [c for c in containers if c.get("name") == wanted]
    failed = [c for c in containers if c.get("exitCode") not in (0, None)]
    container = (chosen or failed or containers or [{}])[0]
    exit_code = container.get("exitCode")
    stop_code = str(task.get("stopCode", ""))
    if exit_code == 0:
        return RunStatus(SUCCEEDED, None, "STOPPED:0")
    reason = task.get("stoppedReason") or container.get("reason") or ""
    if stop_code == "UserInitiated":
        return RunStatus(STOPPED, f"task stopped: {reason}".strip(": "), stop_code)
    described = f"container {container.get('name', '?')} exited {exit_code}"
    return RunStatus(FAILED, f"{described}: {reason}" if reason else described, stop_code or last)


@dataclass
class EcsRunner:
    ecs: Any
    name: str = NAME

    def start(self, request: RunRequest) -> str:
        settings = request.settings
        cluster = str(settings["cluster"])
        env = {**job_environment(request), **dict(settings.get("environment") or {})}
        kwargs: dict[str, Any] = {
            "cluster": cluster,
            "taskDefinition": str(settings["task_definition"]),
            "count": 1,
            "startedBy": STARTED_BY,
            "clientToken": request.token,
            "overrides": {
                "containerOverrides": [
                    {
                        "name": str(settings["container_name"]),
                        "environment": [{"name": k, "value": v} for k, v in sorted(env.items())],
                    }
                ]
            },
            "tags": [
                {"key": "lakegov:product", "value": request.product},
                {"key": "lakegov:run_id", "value": request.run_id},
            ],
        }
        launch_type = settings.get("launch_type", "FARGATE")
        kwargs["launchType"] = launch_type
        if settings.get("subnets"):
            kwargs["networkConfiguration"] = {
                "awsvpcConfiguration": {
                    "subnets": list(settings["subnets"]),
                    "securityGroups": list(settings.get("security_groups") or []),
                    "assignPublicIp": "ENABLED" if settings.get("assign_public_ip") else "DISABLED",
                }
            }
        try:
            response = self.ecs.run_task(**kwargs)
        except ClientError as exc:
            code = error_code(exc)
            if code in _PERMANENT:
                raise PermanentError(f"ECS RunTask on {cluster}: {code}") from exc
            if is_transient(exc) or code in ("ServerException", "ThrottlingException"):
                raise RetryableError(f"ECS RunTask on {cluster}: {code}") from exc
            raise
        tasks = response.get("tasks") or []
        if not tasks:
            failures = response.get("failures") or [{}]
            why = ", ".join(f"{f.get('reason')} {f.get('detail') or ''}".strip() for f in failures)
            if any(str(f.get("reason", "")) in _RETRYABLE_FAILURES for f in failures):
                raise RetryableError(f"ECS could not place the task: {why}")
            raise PermanentError(f"ECS RunTask started nothing: {why}")
        return str(tasks[0]["taskArn"])

    def describe(self, external_id: str, settings: Mapping[str, Any]) -> RunStatus:
        tasks = self.ecs.describe_tasks(cluster=str(settings["cluster"]), tasks=[external_id])
        found = tasks.get("tasks") or []
        if not found:
            return RunStatus(FAILED, f"ECS knows no task {external_id}", "NOT_FOUND")
        return map_task(found[0], settings.get("container_name"))


def parse_event(event: Mapping[str, Any]) -> RunStateChange | None:
    """An "ECS Task State Change" event, or None for anything else.

    The event does not say which container is dbt's: the status here assumes the default
    name; :func:`with_settings` re-maps it once the run (and its ``container_name``) is known.
    """
    if event.get("source") != EVENT_SOURCE or event.get("detail-type") != EVENT_DETAIL_TYPE:
        return None
    detail = event.get("detail") or {}
    return RunStateChange(
        NAME,
        str(detail.get("taskArn", "")),
        map_task(detail),
        at=event.get("time"),
        details={
            "cluster": detail.get("clusterArn"),
            "started_by": detail.get("startedBy"),
            "task": {k: detail.get(k) for k in _TASK_FIELDS if k in detail},
        },
    )


_TASK_FIELDS = ("lastStatus", "stopCode", "stoppedReason", "containers")


def with_settings(change: RunStateChange, settings: Mapping[str, Any]) -> RunStateChange:
    """The state change mapped with the run's own dbt container (``runner.container_name``),
    so that a sidecar's exit code (say 137 when it is killed) never decides the run."""
    task = change.details.get("task")
    container = settings.get("container_name")
    if not isinstance(task, Mapping) or not container:
        return change
    return replace(change, status=map_task(task, str(container)))

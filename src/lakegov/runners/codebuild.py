"""AWS CodeBuild runner (the default): ``StartBuild`` on the template's dbt project.

The build project (template.yaml, ``DbtBuildProject``) fetches the published dbt project
from the config bucket, runs ``dbt`` with dbt-athena on the selection and copies
``run_results.json`` and ``manifest.json`` to ``LAKEGOV_ARTIFACTS_URI``. The selection and
vars travel as environment variable overrides (:func:`lakegov.runners.base.job_environment`).
Its end arrives as a "CodeBuild Build State Change" event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from lakegov.aws import error_code, is_transient
from lakegov.errors import ConfigurationError, PermanentError, RetryableError
from lakegov.runners.base import (
    FAILED,
    RUNNING,
    STOPPED,
    SUCCEEDED,
    TIMED_OUT,
    RunRequest,
    RunStateChange,
    RunStatus,
    job_environment,
)

NAME = "codebuild"
EVENT_SOURCE = "aws.codebuild"
EVENT_DETAIL_TYPE = "CodeBuild Build State Change"
STATE_MAP = {
    "SUCCEEDED": SUCCEEDED,
    "FAILED": FAILED,
    "FAULT": FAILED,
    "STOPPED": STOPPED,
    "TIMED_OUT": TIMED_OUT,
    "IN_PROGRESS": RUNNING,
}
_PERMANENT = {"ResourceNotFoundException", "InvalidInputException", "AccessDeniedException"}


def map_state(status: str, reason: str | None = None) -> RunStatus:
    state = STATE_MAP.get(status.upper(), FAILED)
    if state not in (RUNNING, SUCCEEDED) and not reason:
        reason = f"CodeBuild build {status}"
    return RunStatus(state, reason if state != SUCCEEDED else None, status)


def build_id(external_id: str) -> str:
    """``project:uuid`` from a build ARN (the events name builds by ARN)."""
    return external_id.split(":build/", 1)[1] if ":build/" in external_id else external_id


@dataclass
class CodeBuildRunner:
    codebuild: Any
    default_project: str = ""
    name: str = NAME

    def start(self, request: RunRequest) -> str:
        settings = request.settings
        project = str(settings.get("project_name") or self.default_project)
        if not project:
            raise ConfigurationError("no CodeBuild project: set runner.project_name")
        env = {**job_environment(request), **dict(settings.get("environment") or {})}
        kwargs: dict[str, Any] = {
            "projectName": project,
            "environmentVariablesOverride": [
                {"name": k, "value": v, "type": "PLAINTEXT"} for k, v in sorted(env.items())
            ],
            "idempotencyToken": request.token,
        }
        if settings.get("timeout_minutes"):
            kwargs["timeoutInMinutesOverride"] = int(settings["timeout_minutes"])
        if settings.get("compute_type"):
            kwargs["computeTypeOverride"] = str(settings["compute_type"])
        try:
            build = self.codebuild.start_build(**kwargs)["build"]
        except ClientError as exc:
            code = error_code(exc)
            if code in _PERMANENT:
                raise PermanentError(f"CodeBuild StartBuild on {project}: {code}") from exc
            if is_transient(exc) or code == "AccountLimitExceededException":
                raise RetryableError(f"CodeBuild StartBuild on {project}: {code}") from exc
            raise
        return str(build.get("arn") or build["id"])

    def describe(self, external_id: str, settings: Mapping[str, Any]) -> RunStatus:
        builds = self.codebuild.batch_get_builds(ids=[build_id(external_id)]).get("builds", [])
        if not builds:
            return RunStatus(FAILED, f"CodeBuild knows no build {external_id}", "NOT_FOUND")
        build = builds[0]
        return map_state(str(build.get("buildStatus", "")), _phase_reason(build.get("phases")))


def _phase_reason(phases: Any) -> str | None:
    """The first phase that did not succeed, from the API (camelCase) or an event (kebab)."""
    for phase in phases or []:
        status = phase.get("phaseStatus") or phase.get("phase-status")
        if status in (None, "SUCCEEDED"):
            continue
        kind = phase.get("phaseType") or phase.get("phase-type")
        contexts = phase.get("contexts") or phase.get("phase-context") or []
        messages = [c.get("message", "") if isinstance(c, dict) else str(c) for c in contexts]
        detail = "; ".join(m.strip(": ") for m in messages if m.strip(": "))
        return f"phase {kind} {status}" + (f": {detail}" if detail else "")
    return None


def parse_event(event: Mapping[str, Any]) -> RunStateChange | None:
    """A "CodeBuild Build State Change" event, or None for anything else."""
    if event.get("source") != EVENT_SOURCE or event.get("detail-type") != EVENT_DETAIL_TYPE:
        return None
    detail = event.get("detail") or {}
    info = detail.get("additional-information") or {}
    status = map_state(str(detail.get("build-status", "")), _phase_reason(info.get("phases")))
    return RunStateChange(
        NAME,
        str(detail.get("build-id", "")),
        status,
        at=event.get("time"),
        details={"project": detail.get("project-name")},
    )

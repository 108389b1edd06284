"""What every runner does: start a product's dbt job, and say how it is doing.

A runner's ``start(request) -> external id`` returns at once (the job runs elsewhere); its
end arrives later as an event (CodeBuild, Step Functions and ECS state changes, the local
runner's ``Local Run State Change``) or by polling ``describe`` (MWAA). Each runner module
maps its service's states onto :data:`STATES` and parses its state-change event into a
:class:`RunStateChange`.

The job receives the same contract everywhere (environment variables, or the execution
input / DAG conf with the same names in lower case without the prefix): see
:func:`job_environment`. It must write dbt's ``run_results.json`` and ``manifest.json``
under ``LAKEGOV_ARTIFACTS_URI`` so that the run audit and the partial retry can read them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

TOKEN_MAX = 64  # ECS clientToken's limit, the tightest of the runners' idempotency names
_TOKEN_HASH = 16  # hex digits of SHA-256 kept when a token has to be shortened

RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
TIMED_OUT = "TIMED_OUT"
STOPPED = "STOPPED"
STATES = (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, STOPPED)
TERMINAL = frozenset({SUCCEEDED, FAILED, TIMED_OUT, STOPPED})


@dataclass(frozen=True)
class RunRequest:
    """One start of one product's dbt job."""

    product: str
    run_id: str
    selection: tuple[str, ...] = ()
    vars: Mapping[str, Any] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()
    selector: str | None = None
    command: str = "build"
    attempt: int = 1
    artifacts_uri: str = ""  # s3://bucket/runs/<product>/<run_id>/
    project_uri: str = ""  # s3://config-bucket/dbt/project.zip
    idempotency_token: str = ""  # as persisted with the run; derived from the run if empty

    @property
    def token(self) -> str:
        """A deterministic name for idempotent starts (letters, digits, '-', '_', at most
        :data:`TOKEN_MAX` characters): the persisted one, else :func:`run_token`."""
        return self.idempotency_token or run_token(self.product, self.run_id)


def run_token(product: str, run_id: str) -> str:
    """The idempotency token of one run: ``<product>-<run_id>`` when that is short and plain,
    else a readable prefix and a hash of the whole, so two runs never share a token however
    long the product name (the run id's generation and attempt are never cut off)."""
    raw = f"{product}-{run_id}"
    plain = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "-" for c in raw)
    if plain == raw and len(raw) <= TOKEN_MAX:
        return raw
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:_TOKEN_HASH]
    return f"{plain[: TOKEN_MAX - _TOKEN_HASH - 1]}-{digest}"


@dataclass(frozen=True)
class RunStatus:
    """A job's state in lakegov's terms, with the runner's reason when it did not succeed."""

    state: str
    reason: str | None = None
    native: str = ""  # the service's own status word

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL


@dataclass(frozen=True)
class RunStateChange:
    """A runner's job changed state (parsed from its event, or observed by polling)."""

    runner: str
    external_id: str
    status: RunStatus
    at: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


class Runner(Protocol):
    """The interface each runner implements."""

    name: str

    def start(self, request: RunRequest) -> str:
        """Start the job; return its external id (build ARN, execution ARN, task ARN...)."""
        ...

    def describe(self, external_id: str, settings: Mapping[str, Any]) -> RunStatus:
        """The job's current state."""
        ...


def job_environment(request: RunRequest) -> dict[str, str]:
    """The job contract: what the dbt job needs to know, as environment variables."""
    return {
        "LAKEGOV_PRODUCT": request.product,
        "LAKEGOV_RUN_ID": request.run_id,
        "LAKEGOV_ATTEMPT": str(request.attempt),
        "LAKEGOV_DBT_COMMAND": request.command,
        "LAKEGOV_DBT_SELECT": " ".join(request.selection),
        "LAKEGOV_DBT_EXCLUDE": " ".join(request.exclude),
        "LAKEGOV_DBT_SELECTOR": request.selector or "",
        "LAKEGOV_DBT_VARS": json.dumps(dict(request.vars), sort_keys=True, default=str),
        "LAKEGOV_ARTIFACTS_URI": request.artifacts_uri,
        "LAKEGOV_DBT_PROJECT_URI": request.project_uri,
    }


def job_input(request: RunRequest) -> dict[str, Any]:
    """The same contract as a JSON document (Step Functions input, MWAA DAG run conf)."""
    return {
        "product": request.product,
        "run_id": request.run_id,
        "attempt": request.attempt,
        "dbt_command": request.command,
        "dbt_select": list(request.selection),
        "dbt_exclude": list(request.exclude),
        "dbt_selector": request.selector,
        "dbt_vars": dict(request.vars),
        "artifacts_uri": request.artifacts_uri,
        "dbt_project_uri": request.project_uri,
    }


def dbt_selection_arguments(
    *,
    selector: str | None = None,
    select: Sequence[str] = (),
    exclude: Sequence[str] = (),
    vars: Mapping[str, Any] | None = None,
) -> list[str]:
    """The dbt flags that choose what runs, and with which vars.

    The one Python owner of the job contract's command line (the local runner's); the
    CodeBuild buildspec in template.yaml builds the same flags from ``LAKEGOV_DBT_*``.
    """
    args: list[str] = []
    if vars:
        args += ["--vars", json.dumps(dict(vars), sort_keys=True)]
    if selector:
        args += ["--selector", selector]
    if exclude:
        args += ["--exclude", *exclude]
    if select:  # last: its list runs to the end of the line
        args += ["--select", *select]
    return args

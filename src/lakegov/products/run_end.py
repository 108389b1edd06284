"""How a product run ended, decided without I/O: :func:`decide_run_end`.

:func:`lakegov.products.service.finish_run` gathers what it needs (the job's state change,
dbt's artifacts, the product's attempts and state) and carries the decision out (audit,
events, alarms, the state item's update).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lakegov.products.artifacts import ModelRow
from lakegov.products.store import IDLE
from lakegov.runners.base import FAILED, SUCCEEDED, TIMED_OUT, RunStateChange

RETRIED_STATUSES = frozenset({FAILED, TIMED_OUT})  # a stopped run was stopped on purpose


@dataclass(frozen=True)
class RunEnd:
    """What the end of a run comes to: its status, why, and what the product's state becomes."""

    status: str
    reason: str | None
    retry_selection: list[str]
    will_retry: bool
    sets: dict[str, Any]
    remove: list[str]


def decide_run_end(
    change: RunStateChange,
    *,
    dbt_failed: bool,
    failed_rows: Sequence[ModelRow],
    attempt: int,
    max_attempts: int,
    retry_candidates: Sequence[str] | None,
    artifacts_present: bool,
    run_id: str,
    snapshot: Mapping[str, Any],
    finished_at: str,
) -> RunEnd:
    """Decide how a run ended (pure: no I/O).

    dbt is trusted over the job (a job that says success while dbt failed has failed); a
    failure's reason names the failed models. A failed or timed-out run is retried while
    attempts remain, on ``retry_candidates`` (the failed models and their children; None:
    the product is gone), unless the job never started. ``sets``/``remove`` are the changes
    to the product's state item.
    """
    status = change.status.state
    if status == SUCCEEDED and dbt_failed:
        status = FAILED  # the job said success but dbt did not: trust dbt
    reason = change.status.reason
    if status != SUCCEEDED and failed_rows:
        detail = "; ".join(
            f"{r.model_nm}: {r.fields.get('execution_failure_reason') or 'failed'}"
            for r in failed_rows[:5]
        )
        reason = f"{reason}; {detail}" if reason else detail
    if status != SUCCEEDED and not reason:
        reason = f"{change.runner} job ended {change.status.native or status}"
    retry_selection: list[str] = []
    if status in RETRIED_STATUSES and retry_candidates is not None:
        retry_selection = list(retry_candidates)
    will_retry = bool(
        status in RETRIED_STATUSES
        and retry_candidates is not None
        and attempt < max_attempts
        and (retry_selection or not artifacts_present)
        and change.status.native != "START_FAILED"
    )
    sets: dict[str, Any] = {
        "phase": IDLE,
        "last_run": run_id,
        "last_status": status,
        "last_finished_at": finished_at,
    }
    remove: list[str] = []
    if status == SUCCEEDED:
        sets.update(success_snapshot=dict(snapshot), last_success_at=finished_at)
        remove += ["failed_snapshot", "retry"]
    elif will_retry:
        sets["retry"] = {
            "attempt": attempt + 1,
            "selection": retry_selection,
            "snapshot": dict(snapshot),
            "of": run_id,
        }
    else:
        sets["failed_snapshot"] = dict(snapshot)
        remove.append("retry")
    return RunEnd(status, reason, retry_selection, will_retry, sets, remove)

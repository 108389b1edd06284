"""How a run's end is decided (pure): trust dbt, say why, retry what failed while allowed."""

from __future__ import annotations

from typing import Any

from lakegov.products.artifacts import ModelRow
from lakegov.products.run_end import decide_run_end
from lakegov.runners.base import FAILED, STOPPED, SUCCEEDED, RunStateChange, RunStatus

SNAPSHOT = {"formatted_stg.cards": "2026-11-20T10:00:00Z"}


def end(state: str, *, native: str = "", reason: str | None = None, **kwargs: Any):
    arguments: dict[str, Any] = {
        "dbt_failed": False,
        "failed_rows": [],
        "attempt": 1,
        "max_attempts": 2,
        "retry_candidates": ["cards+"],
        "artifacts_present": True,
        "run_id": "r1",
        "snapshot": SNAPSHOT,
        "finished_at": "2026-11-20T11:00:00Z",
        **kwargs,
    }
    change = RunStateChange("codebuild", "b-1", RunStatus(state, reason, native))
    return decide_run_end(change, **arguments)


def failed_row(model: str, why: str) -> ModelRow:
    return ModelRow({"model_nm": model, "execution_status": "FAILED",
                     "execution_failure_reason": why})  # fmt: skip


def test_a_success_keeps_the_snapshot_and_clears_retries():
    result = end(SUCCEEDED)
    assert (result.status, result.reason, result.will_retry) == (SUCCEEDED, None, False)
    assert result.sets["success_snapshot"] == SNAPSHOT
    assert result.sets["last_success_at"] == "2026-11-20T11:00:00Z"
    assert result.remove == ["failed_snapshot", "retry"]


def test_the_job_saying_success_while_dbt_failed_is_a_failure_naming_the_models():
    result = end(SUCCEEDED, dbt_failed=True, failed_rows=[failed_row("cards", "divide by 0")])
    assert result.status == FAILED
    assert result.reason == "cards: divide by 0"
    # retried on the failed models and their children, with the same snapshot
    assert result.will_retry and result.retry_selection == ["cards+"]
    assert result.sets["retry"] == {
        "attempt": 2, "selection": ["cards+"], "snapshot": SNAPSHOT, "of": "r1"
    }  # fmt: skip


def test_no_retry_once_the_attempts_are_spent_and_a_failed_snapshot_is_kept():
    result = end(FAILED, reason="exit 1", attempt=2)
    assert result.status == FAILED and not result.will_retry
    assert result.reason == "exit 1"
    assert result.sets["failed_snapshot"] == SNAPSHOT and result.remove == ["retry"]


def test_a_job_that_never_started_is_not_retried_and_says_how_it_ended():
    result = end(FAILED, native="START_FAILED")
    assert not result.will_retry
    assert result.reason == "codebuild job ended START_FAILED"


def test_a_stopped_run_is_not_retried():
    result = end(STOPPED, native="STOPPED")
    assert result.status == STOPPED and not result.will_retry and result.retry_selection == []


def test_nothing_to_rerun_in_the_artifacts_means_no_retry():
    assert not end(FAILED, retry_candidates=[]).will_retry
    # without artifacts the whole selection is run again
    assert end(FAILED, retry_candidates=["cards"], artifacts_present=False).will_retry
    # the product is gone: nothing to retry
    assert not end(FAILED, retry_candidates=None).will_retry

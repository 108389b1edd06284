"""Run state on moto: run audit rows, ProductRunFinished, DatasetRefreshed for the outputs,
alarms, and the partial retry of the failed models and their children."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.conftest import ROOT
from tests.integration.products.support import (
    CONFIG_BUCKET,
    FakeRunner,
    alarms,
    apply,
    make_context,
    refreshed,
)

from lakegov.audit import AuditStore
from lakegov.errors import PermanentError, RetryableError
from lakegov.events import validate_detail
from lakegov.products.artifacts import DbtResults, artifacts_prefix
from lakegov.products.service import on_dataset_refreshed, on_run_state_change, sweep
from lakegov.products.store import ProductStore
from lakegov.runners.base import RunStateChange, RunStatus

PRODUCT = {
    "name": "customers_cards",
    "depends_on": ["formatted_stg.mwaa_blog_customers", "formatted_stg.mwaa_blog_cards"],
    "dbt": {"tags": ["formatted", "exception"]},
    "retry": {"max_attempts": 2},
    "refreshes": ["formatted.mwaa_blog_customers", "formatted.mwaa_blog_cards"],
}
ROWS = {
    "mwaa_blog_customers": "SUCCESS",
    "mwaa_blog_customers_exception": "SUCCESS",
    "mwaa_blog_cards": "FAILED",
    "mwaa_blog_cards_exception": "SKIPPED",
}


class Row:
    """What lakegov.runners.dbt_results.ModelRunAudit looks like to the run state."""

    def __init__(self, model: str, status: str) -> None:
        self.unique_id = f"model.lakegov_example.{model}"
        self.fields = {
            "model_nm": model,
            "process_nm": "customers_cards",
            "execution_start_date": "2026-11-20T10:20:00.000000Z",
            "execution_end_date": "2026-11-20T10:20:03.000000Z",
            "execution_status": status,
            "execution_failure_reason": "Binder Error: cc_expiry_date"
            if status == "FAILED"
            else None,
            "rows_affected": 25 if status == "SUCCESS" else None,
        }

    def to_dict(self) -> dict[str, Any]:
        return dict(self.fields)


def stand_in_dbt(rows: dict[str, str], retry: list[str]) -> DbtResults:
    return DbtResults(
        audit_rows=lambda results, manifest, process_nm: [Row(m, s) for m, s in rows.items()],
        retry_selection=lambda results, manifest: retry,
        run_failed=lambda results: "FAILED" in rows.values(),
        _loaded=True,
    )


def put_artifacts(
    aws: dict[str, Any], run_id: str, results: Any = None, manifest: Any = None
) -> None:
    prefix = artifacts_prefix("customers_cards", run_id)
    aws["s3"].put_object(
        Bucket=CONFIG_BUCKET,
        Key=prefix + "run_results.json",
        Body=json.dumps(results or {"results": []}),
    )
    aws["s3"].put_object(
        Bucket=CONFIG_BUCKET,
        Key=prefix + "manifest.json",
        Body=json.dumps(manifest or {"nodes": {}}),
    )


def start_product(aws: dict[str, Any], ctx: Any, document: dict[str, Any] = PRODUCT) -> str:
    apply(aws, document)
    on_dataset_refreshed(refreshed("mwaa_blog_customers"), ctx)
    on_dataset_refreshed(refreshed("mwaa_blog_cards"), ctx)
    state = ProductStore("audit", aws["ddb"]).get_state("customers_cards")
    return str(state["current_run"])


def published(ctx: Any, detail_type: str) -> list[dict[str, Any]]:
    return [dict(e.detail) for e in ctx.publisher.published if e.detail_type == detail_type]


def test_a_successful_run_is_audited_per_model_and_announces_its_outputs(aws, runner, clock):
    ctx = make_context(
        aws, {"codebuild": runner}, clock, dbt=stand_in_dbt(dict.fromkeys(ROWS, "SUCCESS"), [])
    )
    run_id = start_product(aws, ctx)
    put_artifacts(aws, run_id)
    # When CodeBuild reports success
    outcome = on_run_state_change(
        RunStateChange("codebuild", "codebuild-1", RunStatus("SUCCEEDED")), ctx
    )
    # Then every model has its audit row with the original fields
    assert outcome["status"] == "SUCCEEDED" and outcome["models"] == 4
    audit = AuditStore("audit", aws["ddb"])
    row = audit.get("run", "customers_cards", f"{run_id}#mwaa_blog_customers")
    assert row is not None
    assert {k: row[k] for k in ("model_nm", "process_nm", "execution_status", "rows_affected")} == {
        "model_nm": "mwaa_blog_customers",
        "process_nm": "customers_cards",
        "execution_status": "SUCCESS",
        "rows_affected": 25,
    }
    assert row["execution_start_date"] and row["execution_end_date"]
    assert audit.get("run", "customers_cards", run_id)["status"] == "SUCCEEDED"
    # and ProductRunFinished plus one DatasetRefreshed per output went out, all valid
    [finished] = published(ctx, "ProductRunFinished")
    assert finished["status"] == "SUCCEEDED" and len(finished["models"]) == 4
    outputs = published(ctx, "DatasetRefreshed")
    assert [(o["database"], o["table"], o["mode"]) for o in outputs] == [
        ("lakegov_dev_formatted", "mwaa_blog_customers", "product"),
        ("lakegov_dev_formatted", "mwaa_blog_cards", "product"),
    ]
    for event in ctx.publisher.published:
        validate_detail(event.detail_type, event.detail)
    assert alarms(aws) == []
    state = ProductStore("audit", aws["ddb"]).get_state("customers_cards")
    assert state["phase"] == "idle" and state["last_status"] == "SUCCEEDED"


def test_a_failed_run_alarms_and_reruns_only_the_failed_models_and_their_children(
    aws, runner, clock
):
    ctx = make_context(
        aws,
        {"codebuild": runner},
        clock,
        dbt=stand_in_dbt(ROWS, ["mwaa_blog_cards", "mwaa_blog_cards_exception"]),
    )
    run_id = start_product(aws, ctx)
    put_artifacts(aws, run_id)
    # When the build fails
    outcome = on_run_state_change(
        RunStateChange("codebuild", "codebuild-1", RunStatus("FAILED", "phase BUILD FAILED")), ctx
    )
    # Then the retry starts with the failed model and its children only
    assert outcome["will_retry"] is True
    assert len(runner.started) == 2
    retry = runner.started[1]
    assert retry.selection == ("mwaa_blog_cards", "mwaa_blog_cards_exception")
    assert retry.attempt == 2 and retry.run_id.endswith("-a2")
    [finished] = published(ctx, "ProductRunFinished")
    assert finished["status"] == "FAILED"
    assert finished["retry_selection"] == ["mwaa_blog_cards", "mwaa_blog_cards_exception"]
    assert "mwaa_blog_cards: Binder Error" in finished["failure_reason"]
    started = published(ctx, "ProductRunStarted")
    assert started[1]["trigger"] == {"type": "retry", "of": run_id} and started[1]["attempt"] == 2
    assert published(ctx, "DatasetRefreshed") == []
    [alarm] = alarms(aws)
    assert alarm["product"] == "customers_cards" and alarm["status"] == "FAILED"
    assert "retrying mwaa_blog_cards, mwaa_blog_cards_exception" in alarm["follow_up"]
    failed_row = AuditStore("audit", aws["ddb"]).get(
        "run", "customers_cards", f"{run_id}#mwaa_blog_cards"
    )
    assert failed_row["execution_status"] == "FAILED"
    assert failed_row["execution_failure_reason"] == "Binder Error: cc_expiry_date"

    # When the retry fails too: no attempt left, alarm, and the product waits for new data
    put_artifacts(aws, retry.run_id)
    second = on_run_state_change(
        RunStateChange("codebuild", "codebuild-2", RunStatus("FAILED")), ctx
    )
    assert second["will_retry"] is False and len(runner.started) == 2
    assert "no retry left" in alarms(aws)[0]["follow_up"]
    on_dataset_refreshed(refreshed("mwaa_blog_customers", at="2026-11-18T10:00:00Z"), ctx)
    assert len(runner.started) == 2  # the same inputs again: no loop
    on_dataset_refreshed(refreshed("mwaa_blog_cards", at="2026-11-18T12:00:00Z"), ctx)
    assert len(runner.started) == 3 and runner.started[2].attempt == 1


def test_a_job_that_failed_before_dbt_retries_the_products_own_selection(aws, runner, clock):
    ctx = make_context(aws, {"codebuild": runner}, clock, dbt=stand_in_dbt({}, []))
    start_product(aws, ctx)
    on_run_state_change(
        RunStateChange("codebuild", "codebuild-1", RunStatus("FAILED", "INSTALL")), ctx
    )
    assert runner.started[1].selection == ("tag:formatted", "tag:exception")


def test_a_stopped_run_is_not_retried(aws, runner, clock):
    ctx = make_context(aws, {"codebuild": runner}, clock, dbt=stand_in_dbt({}, []))
    start_product(aws, ctx)
    outcome = on_run_state_change(
        RunStateChange("codebuild", "codebuild-1", RunStatus("STOPPED")), ctx
    )
    assert outcome["status"] == "STOPPED" and outcome["will_retry"] is False
    assert len(runner.started) == 1


def test_a_duplicate_state_change_is_recorded_once(aws, runner, clock):
    ctx = make_context(aws, {"codebuild": runner}, clock, dbt=stand_in_dbt({}, []))
    start_product(aws, ctx)
    change = RunStateChange("codebuild", "codebuild-1", RunStatus("SUCCEEDED"))
    on_run_state_change(change, ctx)
    again = on_run_state_change(change, ctx)
    assert again["status"] == "DUPLICATE"
    assert len(published(ctx, "ProductRunFinished")) == 1


def test_state_changes_of_other_jobs_and_non_final_states_are_ignored(aws, ctx):
    assert (
        on_run_state_change(RunStateChange("codebuild", "x", RunStatus("SUCCEEDED")), ctx)["status"]
        == "IGNORED"
    )
    assert (
        on_run_state_change(RunStateChange("codebuild", "x", RunStatus("RUNNING")), ctx)["status"]
        == "IGNORED"
    )


def test_a_runner_that_cannot_start_for_good_fails_the_run_and_alarms(aws, clock):
    runner = FakeRunner(fail_with=PermanentError("CodeBuild StartBuild: ResourceNotFoundException"))
    ctx = make_context(aws, {"codebuild": runner}, clock, dbt=stand_in_dbt({}, []))
    start_product(aws, ctx)
    [finished] = published(ctx, "ProductRunFinished")
    assert (
        finished["status"] == "FAILED" and "ResourceNotFoundException" in finished["failure_reason"]
    )
    assert alarms(aws)[0]["status"] == "FAILED"
    assert ProductStore("audit", aws["ddb"]).get_state("customers_cards")["phase"] == "idle"


def test_a_transient_start_failure_is_retried_by_redelivery(aws, clock):
    runner = FakeRunner(fail_with=RetryableError("throttled"))
    ctx = make_context(aws, {"codebuild": runner}, clock, dbt=stand_in_dbt({}, []))
    apply(aws, PRODUCT)
    on_dataset_refreshed(refreshed("mwaa_blog_customers"), ctx)
    with pytest.raises(RetryableError):
        on_dataset_refreshed(refreshed("mwaa_blog_cards"), ctx)
    assert ProductStore("audit", aws["ddb"]).get_state("customers_cards")["phase"] == "idle"
    runner.fail_with = None
    on_dataset_refreshed(refreshed("mwaa_blog_cards"), ctx)  # the redelivered event
    assert len(runner.started) == 1


def test_the_sweeper_polls_mwaa_and_starts_schedule_fallbacks(aws, clock):
    mwaa_runner = FakeRunner(name="mwaa")
    codebuild = FakeRunner()
    ctx = make_context(
        aws, {"mwaa": mwaa_runner, "codebuild": codebuild}, clock, dbt=stand_in_dbt({}, [])
    )
    runner_settings = {"type": "mwaa", "environment_name": "env", "dag_id": "dbt"}
    apply(aws, {**PRODUCT, "runner": runner_settings})
    apply(
        aws,
        {
            **PRODUCT,
            "name": "nightly",
            "depends_on": ["formatted_stg.never"],
            "refreshes": [],
            "schedule": "rate(1 day)",
        },
    )
    on_dataset_refreshed(refreshed("mwaa_blog_customers"), ctx)
    on_dataset_refreshed(refreshed("mwaa_blog_cards"), ctx)
    assert len(mwaa_runner.started) == 1
    # When the sweeper runs while the DAG run is still going: nothing ends, the schedule fires
    first = sweep(ctx)
    assert first["customers_cards"] == {"polled": "RUNNING"}
    assert first["nightly"]["started"] is True and len(codebuild.started) == 1
    assert codebuild.started[0].selection == ("tag:formatted", "tag:exception")
    # When the DAG run has succeeded
    mwaa_runner.status = RunStatus("SUCCEEDED")
    second = sweep(ctx)
    assert second["customers_cards"]["polled"]["status"] == "SUCCEEDED"
    assert published(ctx, "ProductRunFinished")[0]["runner"] == "mwaa"


CAPTURED = ROOT / "tests" / "unit" / "runners" / "fixtures" / "cards_error"


@pytest.mark.skipif(not CAPTURED.is_dir(), reason="needs the dbt runner's captured artifacts")
def test_with_real_dbt_artifacts_the_retry_selects_the_cards_models_only(aws, runner, clock):
    # Given a real failed run's artifacts (cards staging lost a column: both cards models fail)
    ctx = make_context(aws, {"codebuild": runner}, clock)  # the real dbt_results parsing
    run_id = start_product(aws, ctx)
    results = json.loads((CAPTURED / "run_results.json").read_text())
    manifest = json.loads((CAPTURED / "manifest.json").read_text())
    put_artifacts(aws, run_id, results, manifest)
    outcome = on_run_state_change(
        RunStateChange("codebuild", "codebuild-1", RunStatus("FAILED")), ctx
    )
    # Then the retry reruns the cards models and their children, none of the customers ones
    selection = runner.started[1].selection
    assert selection and all("cards" in model for model in selection)
    assert "mwaa_blog_cards" in selection
    assert outcome["models"] >= 4
    rows = {r["model_nm"]: r for r in published(ctx, "ProductRunFinished")[0]["models"]}
    assert rows["mwaa_blog_customers"]["execution_status"] == "SUCCESS"
    assert rows["mwaa_blog_cards"]["execution_status"] == "FAILED"

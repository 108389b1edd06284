"""The run audit and the partial-retry selection, from captured dbt artifacts."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from lakegov.errors import PermanentError
from lakegov.runners.dbt_results import (
    FAILED,
    SKIPPED,
    SUCCESS,
    audit_rows,
    audit_status,
    failed_and_children_selection,
    load_artifact,
    run_status,
)

FIXTURES = Path(__file__).parent / "fixtures"
AUDIT_FIELDS = {
    "model_nm",
    "process_nm",
    "execution_start_date",
    "execution_end_date",
    "execution_status",
    "execution_failure_reason",
    "rows_affected",
}
ALL_MODELS = [
    "mwaa_blog_cards",
    "mwaa_blog_cards_exception",
    "mwaa_blog_customers",
    "mwaa_blog_customers_exception",
]


def artifacts(case: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return (
        load_artifact(FIXTURES / case / "run_results.json"),
        load_artifact(FIXTURES / case / "manifest.json"),
    )


def test_success_run_gives_one_success_row_per_model() -> None:
    # Given the artifacts of a clean build
    run_results, manifest = artifacts("success")

    # When they are turned into the run audit
    rows = audit_rows(run_results, manifest, process_nm="customers_and_cards")

    # Then there is one row per built model (no tests, no ephemeral dq models) with counts
    by_name = {row.model_nm: row for row in rows}
    assert sorted(by_name) == ALL_MODELS
    assert {row.execution_status for row in rows} == {SUCCESS}
    assert {name: row.rows_affected for name, row in by_name.items()} == {
        "mwaa_blog_customers": 25,
        "mwaa_blog_customers_exception": 7,
        "mwaa_blog_cards": 30,
        "mwaa_blog_cards_exception": 8,
    }
    for row in rows:
        assert set(row.to_dict()) == AUDIT_FIELDS
        assert row.process_nm == "customers_and_cards"
        assert row.execution_failure_reason is None
        start = datetime.fromisoformat(row.execution_start_date or "")
        end = datetime.fromisoformat(row.execution_end_date or "")
        assert start <= end
    assert run_status(run_results) == SUCCESS
    assert failed_and_children_selection(run_results, manifest) == []


def test_audit_window_spans_compile_and_execute() -> None:
    # Given a model's result with its compile and execute timings
    run_results, manifest = artifacts("success")
    result = next(r for r in run_results["results"] if r["unique_id"].endswith(".mwaa_blog_cards"))
    timing = {t["name"]: t for t in result["timing"]}

    # When audited
    row = next(
        r
        for r in audit_rows(run_results, manifest, process_nm="p")
        if r.model_nm == "mwaa_blog_cards"
    )

    # Then the window runs from the compile start to the execute end
    assert row.execution_start_date == timing["compile"]["started_at"]
    assert row.execution_end_date == timing["execute"]["completed_at"]


def test_failed_models_carry_dbt_reason_and_no_row_count() -> None:
    run_results, manifest = artifacts("cards_error")

    rows = {r.model_nm: r for r in audit_rows(run_results, manifest, process_nm="p")}

    assert rows["mwaa_blog_customers"].execution_status == SUCCESS
    assert rows["mwaa_blog_customers"].rows_affected == 25
    for name in ("mwaa_blog_cards", "mwaa_blog_cards_exception"):
        assert rows[name].execution_status == FAILED
        assert rows[name].rows_affected is None
        reason = rows[name].execution_failure_reason or ""
        assert reason.startswith(f"Runtime Error in model {name}")
        assert "cc_expiry_date" in reason
    assert run_status(run_results) == FAILED


def test_retry_after_a_leaf_failure_leaves_healthy_upstream_alone() -> None:
    # Given the cards models failed while the customers they depend on were built
    run_results, manifest = artifacts("cards_error")

    # Then the retry reruns the cards models only
    assert failed_and_children_selection(run_results, manifest) == [
        "mwaa_blog_cards",
        "mwaa_blog_cards_exception",
    ]


def test_skipped_children_name_the_failed_upstream() -> None:
    # Given customers failed, so dbt skipped the cards models downstream
    run_results, manifest = artifacts("customers_error")

    rows = {r.model_nm: r for r in audit_rows(run_results, manifest, process_nm="p")}

    assert rows["mwaa_blog_customers"].execution_status == FAILED
    assert rows["mwaa_blog_customers_exception"].execution_status == FAILED
    for name in ("mwaa_blog_cards", "mwaa_blog_cards_exception"):
        assert rows[name].execution_status == SKIPPED
        assert (
            rows[name].execution_failure_reason == "skipped: upstream failed: mwaa_blog_customers"
        )
        assert rows[name].execution_start_date is None
        assert rows[name].rows_affected is None


def test_retry_after_a_parent_failure_includes_its_children() -> None:
    run_results, manifest = artifacts("customers_error")

    assert failed_and_children_selection(run_results, manifest) == ALL_MODELS


def test_retry_selection_walks_the_child_map_not_the_skipped_statuses() -> None:
    # Given only the customers failure is reported (a run that stopped before the rest)
    run_results, manifest = artifacts("customers_error")
    only_failed = copy.deepcopy(run_results)
    only_failed["results"] = [
        r
        for r in run_results["results"]
        if r["unique_id"] == "model.lakegov_example.mwaa_blog_customers"
    ]

    # Then its children are still found, through the ephemeral cards_dq model
    assert failed_and_children_selection(only_failed, manifest) == [
        "mwaa_blog_cards",
        "mwaa_blog_cards_exception",
        "mwaa_blog_customers",
    ]


def test_a_failed_data_test_reruns_the_model_it_is_attached_to() -> None:
    # Given a clean build where the relationships test on cards failed
    run_results, manifest = artifacts("success")
    results = copy.deepcopy(run_results)
    test = next(r for r in results["results"] if "relationships_mwaa_blog_cards" in r["unique_id"])
    test["status"] = "fail"
    test["message"] = "Got 1 result, configured to fail if != 0"

    # Then the run failed, the model rows stay successes, and only cards is rebuilt
    # (not the customers model the relationship also reads)
    assert run_status(results) == FAILED
    assert {r.execution_status for r in audit_rows(results, manifest, process_nm="p")} == {SUCCESS}
    assert failed_and_children_selection(results, manifest) == ["mwaa_blog_cards"]


def test_tests_can_be_audited_too() -> None:
    run_results, manifest = artifacts("success")

    rows = audit_rows(run_results, manifest, process_nm="p", resource_types={"test"})

    assert len(rows) == 10
    assert all(row.execution_status == SUCCESS for row in rows)


def test_audit_without_manifest_falls_back_to_unique_ids() -> None:
    run_results, _ = artifacts("cards_error")

    rows = audit_rows(run_results, None, process_nm="p")

    assert sorted(r.model_nm for r in rows) == ALL_MODELS


@pytest.mark.parametrize(
    ("dbt_status", "expected"),
    [
        ("success", SUCCESS),
        ("pass", SUCCESS),
        ("warn", SUCCESS),
        ("error", FAILED),
        ("fail", FAILED),
        ("runtime error", FAILED),
        ("skipped", SKIPPED),
        ("something new", FAILED),
    ],
)
def test_dbt_statuses_map_to_audit_statuses(dbt_status: str, expected: str) -> None:
    assert audit_status(dbt_status) == expected


def test_unreadable_artifact_is_a_permanent_error(tmp_path: Path) -> None:
    broken = tmp_path / "run_results.json"
    broken.write_text("{not json")

    with pytest.raises(PermanentError, match="cannot read dbt artifact"):
        load_artifact(broken)
    with pytest.raises(PermanentError):
        load_artifact(tmp_path / "missing.json")
    (tmp_path / "list.json").write_text(json.dumps([1]))
    with pytest.raises(PermanentError, match="not a JSON object"):
        load_artifact(tmp_path / "list.json")

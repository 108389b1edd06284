"""The run audit and the dbt tests of every run, as tables in the lake (moto): one object per
run, registered in the formatted database, rewritten (not duplicated) by a duplicate end."""

from __future__ import annotations

import copy
import io
import json
from typing import Any

import pyarrow.parquet as pq
from tests.conftest import ROOT
from tests.integration.products.support import make_context
from tests.integration.products.test_products_runs import put_artifacts, start_product

from lakegov.layout import AUDIT_CONTROL_TABLE, TEST_RESULTS_TABLE
from lakegov.lineage.records import LakeRecords
from lakegov.products.service import on_run_state_change
from lakegov.runners.base import RunStateChange, RunStatus

FORMATTED_BUCKET = "lakegov-formatted"
FORMATTED_DB = "lakegov_dev_formatted"
ARTIFACTS = ROOT / "tests" / "unit" / "runners" / "fixtures" / "success"
FAILING_TEST = "test.lakegov_example.unique_mwaa_blog_cards_cc_number.116cad6b08"


def lake(aws: dict[str, Any]) -> LakeRecords:
    import boto3

    glue = boto3.client("glue", region_name="us-east-1")
    glue.create_database(DatabaseInput={"Name": FORMATTED_DB})
    aws["s3"].create_bucket(Bucket=FORMATTED_BUCKET)
    aws["glue"] = glue
    return LakeRecords(aws["s3"], glue, FORMATTED_BUCKET, FORMATTED_DB)


def objects(aws: dict[str, Any], table: str) -> list[str]:
    listing = aws["s3"].list_objects_v2(Bucket=FORMATTED_BUCKET, Prefix=f"{table}/")
    return [o["Key"] for o in listing.get("Contents", [])]


def rows(aws: dict[str, Any], key: str) -> list[dict[str, Any]]:
    body = aws["s3"].get_object(Bucket=FORMATTED_BUCKET, Key=key)["Body"].read()
    return pq.read_table(io.BytesIO(body)).to_pylist()


def run_with_artifacts(aws: dict[str, Any], runner: Any, clock: Any, results: Any) -> Any:
    ctx = make_context(aws, {"codebuild": runner}, clock, records=lake(aws))
    run_id = start_product(aws, ctx)
    manifest = json.loads((ARTIFACTS / "manifest.json").read_text())
    put_artifacts(aws, run_id, results, manifest)
    return ctx, run_id


def test_every_model_run_lands_in_audit_control_once_even_when_the_end_is_delivered_twice(
    aws, runner, clock
):
    # Given a product run whose dbt artifacts say four models ran
    results = json.loads((ARTIFACTS / "run_results.json").read_text())
    ctx, run_id = run_with_artifacts(aws, runner, clock, results)
    change = RunStateChange("codebuild", "codebuild-1", RunStatus("SUCCEEDED"))
    # When its end is handled, then handled again (a duplicate event, after the audit lost it)
    on_run_state_change(change, ctx)
    ctx.audit.record("run", "customers_cards", run_id, "STARTED")  # as if never finished
    ctx.store.mark_running("customers_cards", run_id, runner="codebuild", external_id="codebuild-1")
    on_run_state_change(change, ctx)
    # Then audit_control holds one object for the run, one row per model, original fields first
    (key,) = objects(aws, AUDIT_CONTROL_TABLE)
    assert key.startswith("audit_control/run_date=")
    audited = rows(aws, key)
    assert sorted(r["model_nm"] for r in audited) == [
        "mwaa_blog_cards",
        "mwaa_blog_cards_exception",
        "mwaa_blog_customers",
        "mwaa_blog_customers_exception",
    ]
    first = audited[0]
    assert list(first)[:7] == [
        "model_nm",
        "process_nm",
        "execution_start_date",
        "execution_end_date",
        "execution_status",
        "execution_failure_reason",
        "rows_affected",
    ]
    assert {r["execution_status"] for r in audited} == {"SUCCESS"}
    assert {(r["run_id"], r["product"], r["runner"]) for r in audited} == {
        (run_id, "customers_cards", "codebuild")
    }
    # and the table is registered in the formatted database, partitioned by run date
    table = aws["glue"].get_table(DatabaseName=FORMATTED_DB, Name=AUDIT_CONTROL_TABLE)["Table"]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["run_date"]
    assert table["StorageDescriptor"]["Location"] == f"s3://{FORMATTED_BUCKET}/audit_control/"
    partitions = aws["glue"].get_partitions(DatabaseName=FORMATTED_DB, TableName="audit_control")
    assert [p["Values"] for p in partitions["Partitions"]] == [[key.split("=")[1].split("/")[0]]]


def test_a_failing_dbt_test_shows_in_test_results(aws, runner, clock):
    # Given a run where dbt's unique test on the cards' cc_number found 2 duplicates
    results = copy.deepcopy(json.loads((ARTIFACTS / "run_results.json").read_text()))
    for result in results["results"]:
        if result["unique_id"] == FAILING_TEST:
            result.update(
                status="fail", failures=2, message="Got 2 results, configured to fail if != 0"
            )
    ctx, run_id = run_with_artifacts(aws, runner, clock, results)
    # When the run ends
    on_run_state_change(RunStateChange("codebuild", "codebuild-1", RunStatus("SUCCEEDED")), ctx)
    # Then test_results has every test of the run, the failing one with its failures
    (key,) = objects(aws, TEST_RESULTS_TABLE)
    tests = {r["test_name"]: r for r in rows(aws, key)}
    assert len(tests) == 10
    failing = tests["unique_mwaa_blog_cards_cc_number"]
    assert (failing["status"], failing["failures"], failing["model_nm"]) == (
        "fail",
        2,
        "mwaa_blog_cards",
    )
    assert failing["run_id"] == run_id
    assert sum(1 for t in tests.values() if t["status"] == "pass") == 9
    assert aws["glue"].get_table(DatabaseName=FORMATTED_DB, Name=TEST_RESULTS_TABLE)["Table"]

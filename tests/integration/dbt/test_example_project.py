"""The example dbt project on the local runner: DQ split, referential check, run audit, retry.

Three dbt invocations in all (each ~10 s here): one full build shared by the module, then a
failing build and its partial retry.
"""

from __future__ import annotations

import csv
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from tests.integration.dbt.helpers import (
    DBT_PROJECT,
    SAMPLE_DATA,
    dbt_env,
    put_staging,
    read_lake_table,
    sample_cards,
    sample_customers,
)

from lakegov.runners.dbt_results import (
    FAILED,
    SKIPPED,
    SUCCESS,
    failed_and_children_selection,
)
from lakegov.runners.dbt_subprocess import DbtRunOutcome, run_dbt_local

pytestmark = pytest.mark.slow

# The sample files' bad rows and the checks they fail (see examples/data/).
EXPECTED_CUSTOMER_EXCEPTIONS = {
    ("C1007", "Hannah"): "not_null_email",
    ("C1012", "Maria"): "email_format",
    ("C1018", "Isabella"): "dob_format",
    ("C1021", "Oliver"): "email_format|not_null_dob",
    ("C1025", "Gabriel"): "unique_cust_id",
    ("C1025", "Gabriela"): "unique_cust_id",
    (None, "Ruth"): "not_null_cust_id",
}
EXPECTED_CARD_EXCEPTIONS = {
    ("C1099", "4539695032000654"): "referential_cust_id",  # no such customer
    ("C1012", "5425645415191459"): "referential_cust_id",  # customer rejected (bad email)
    ("C1004", "4716505970712829"): "cc_expiry_date_format",
    ("C1015", "5191086543470741"): "cc_expiry_date_format",
    ("C1020", None): "not_null_cc_number",
    ("C1027", "4556 7375 8689"): "cc_number_format",
    ("C1009", "4024471536261453"): "unique_cc_number",
    ("C1022", "4024471536261453"): "unique_cc_number",
}
MODELS = {
    "mwaa_blog_customers",
    "mwaa_blog_customers_exception",
    "mwaa_blog_cards",
    "mwaa_blog_cards_exception",
}


def _sample_card_keys() -> list[tuple[str | None, str | None]]:
    with (SAMPLE_DATA / "cards.csv").open(newline="") as handle:
        return [(r["cust_id"] or None, r["cc_number"] or None) for r in csv.DictReader(handle)]


def _sample_customer_keys() -> list[tuple[str | None, str]]:
    with (SAMPLE_DATA / "customers.json").open() as handle:
        return [(d.get("cust_id"), d["fname"]) for d in map(json.loads, handle)]


@pytest.fixture(scope="module")
def lake(s3: Any, moto_endpoint: str) -> dict[str, str]:
    """Given the formatted bucket with the sample files staged as Parquet."""
    bucket = "lakegov-formatted-happy"
    s3.create_bucket(Bucket=bucket)
    put_staging(s3, bucket, "mwaa_blog_customers", sample_customers())
    put_staging(s3, bucket, "mwaa_blog_cards", sample_cards())
    return {"bucket": bucket, "endpoint": moto_endpoint}


@pytest.fixture(scope="module")
def full_build(lake: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> DbtRunOutcome:
    """When the whole project is built on the local target."""
    return run_dbt_local(
        DBT_PROJECT,
        selection=None,
        vars={},
        env=dbt_env(lake["endpoint"], lake["bucket"]),
        run_dir=tmp_path_factory.mktemp("full-build"),
        process_nm="customers_and_cards",
        timeout_s=240,
    )


def test_full_build_succeeds_and_writes_every_model_to_s3(
    full_build: DbtRunOutcome, lake: dict[str, str], s3: Any
) -> None:
    assert full_build.status == SUCCESS, full_build.error
    assert full_build.run_results_path and full_build.run_results_path.is_file()
    assert full_build.manifest_path and full_build.manifest_path.is_file()
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=lake["bucket"])["Contents"]}
    assert "formatted/mwaa_blog_customers/data.parquet" in keys
    assert "formatted/mwaa_blog_cards/data.parquet" in keys
    assert "formatted_exception/mwaa_blog_customers_exception/data.parquet" in keys
    assert "formatted_exception/mwaa_blog_cards_exception/data.parquet" in keys


def test_formatted_customers_hold_exactly_the_clean_rows(
    full_build: DbtRunOutcome, lake: dict[str, str], s3: Any
) -> None:
    table = read_lake_table(s3, lake["bucket"], "formatted/mwaa_blog_customers/")
    got = sorted(zip(table["cust_id"].to_pylist(), table["fname"].to_pylist(), strict=True))
    expected = sorted(k for k in _sample_customer_keys() if k not in EXPECTED_CUSTOMER_EXCEPTIONS)
    assert got == expected
    assert len(got) == 25
    assert "tests_failed" not in table.column_names
    # the clean table is typed: dob is a date, the partition is kept as a column
    assert str(table.schema.field("dob").type) == "date32[day]"
    assert set(table["partition_dt"].to_pylist()) == {"2026-11-20"}


def test_customer_exceptions_list_the_failed_checks(
    full_build: DbtRunOutcome, lake: dict[str, str], s3: Any
) -> None:
    prefix = "formatted_exception/mwaa_blog_customers_exception/"
    table = read_lake_table(s3, lake["bucket"], prefix)
    rows = table.to_pylist()
    got = {(r["cust_id"], r["fname"]): r["tests_failed"] for r in rows}
    assert len(rows) == len(EXPECTED_CUSTOMER_EXCEPTIONS)
    assert got == EXPECTED_CUSTOMER_EXCEPTIONS
    # the raw values are kept for whoever fixes the source
    oliver = next(r for r in rows if r["fname"] == "Oliver")
    assert oliver["email"] == "oliver.schmidt.example.com"
    assert oliver["dob"] is None


def test_formatted_cards_hold_exactly_the_clean_rows(
    full_build: DbtRunOutcome, lake: dict[str, str], s3: Any
) -> None:
    table = read_lake_table(s3, lake["bucket"], "formatted/mwaa_blog_cards/")
    got = sorted(zip(table["cust_id"].to_pylist(), table["cc_number"].to_pylist(), strict=True))
    expected = sorted(k for k in _sample_card_keys() if k not in EXPECTED_CARD_EXCEPTIONS)
    assert got == expected
    assert len(got) == 30


def test_card_exceptions_include_the_orphan_card(
    full_build: DbtRunOutcome, lake: dict[str, str], s3: Any
) -> None:
    table = read_lake_table(s3, lake["bucket"], "formatted_exception/mwaa_blog_cards_exception/")
    got = {(r["cust_id"], r["cc_number"]): r["tests_failed"] for r in table.to_pylist()}
    assert got == EXPECTED_CARD_EXCEPTIONS
    assert got[("C1099", "4539695032000654")] == "referential_cust_id"


def test_run_audit_has_one_row_per_model(full_build: DbtRunOutcome) -> None:
    rows = {row.model_nm: row for row in full_build.models}
    assert set(rows) == MODELS
    assert {row.execution_status for row in rows.values()} == {SUCCESS}
    assert {row.process_nm for row in rows.values()} == {"customers_and_cards"}
    assert rows["mwaa_blog_customers"].rows_affected == 25
    assert rows["mwaa_blog_customers_exception"].rows_affected == 7
    assert rows["mwaa_blog_cards"].rows_affected == 30
    assert rows["mwaa_blog_cards_exception"].rows_affected == 8
    for row in rows.values():
        assert row.execution_failure_reason is None
        assert row.execution_start_date and row.execution_end_date
        start = datetime.fromisoformat(row.execution_start_date)
        end = datetime.fromisoformat(row.execution_end_date)
        assert start <= end
    # the referential check runs after the customers it checks against
    cards, customers = rows["mwaa_blog_cards"], rows["mwaa_blog_customers"]
    assert cards.execution_start_date >= customers.execution_end_date  # type: ignore[operator]
    assert set(rows["mwaa_blog_cards"].to_dict()) == {
        "model_nm",
        "process_nm",
        "execution_start_date",
        "execution_end_date",
        "execution_status",
        "execution_failure_reason",
        "rows_affected",
    }


def test_failed_model_is_audited_and_retried_with_its_children_only(
    s3: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    # Given staged customers and a cards file that lost its expiry-date column
    bucket = "lakegov-formatted-retry"
    s3.create_bucket(Bucket=bucket)
    put_staging(s3, bucket, "mwaa_blog_customers", sample_customers())
    put_staging(s3, bucket, "mwaa_blog_cards", sample_cards().drop_columns(["cc_expiry_date"]))
    env = dbt_env(moto_endpoint, bucket)
    state = tmp_path / "state"

    # When the project is built
    failed = run_dbt_local(
        DBT_PROJECT, selection=None, vars={}, env=env, run_dir=tmp_path / "run-1",
        state_dir=state, process_nm="customers_and_cards", timeout_s=240,
    )  # fmt: skip

    # Then the cards models fail with dbt's reason, the customers ones do not
    assert failed.status == FAILED
    assert failed.error and "mwaa_blog_cards" in failed.error
    rows = {row.model_nm: row for row in failed.models}
    assert rows["mwaa_blog_customers"].execution_status == SUCCESS
    assert rows["mwaa_blog_customers_exception"].execution_status == SUCCESS
    for name in ("mwaa_blog_cards", "mwaa_blog_cards_exception"):
        assert rows[name].execution_status == FAILED
        assert rows[name].rows_affected is None
        assert "cc_expiry_date" in (rows[name].execution_failure_reason or "")
    assert SKIPPED not in {row.execution_status for row in rows.values()}

    # and the retry selection is the failed models and their children, not the customers
    run_results, manifest = failed.run_results(), failed.manifest()
    assert run_results is not None and manifest is not None
    selection = failed_and_children_selection(run_results, manifest)
    assert selection == ["mwaa_blog_cards", "mwaa_blog_cards_exception"]

    # When the file is fixed and only that selection is rerun
    put_staging(s3, bucket, "mwaa_blog_cards", sample_cards())
    retry = run_dbt_local(
        DBT_PROJECT, selection=selection, vars={}, env=env, run_dir=tmp_path / "run-2",
        state_dir=state, process_nm="customers_and_cards", timeout_s=240,
    )  # fmt: skip

    # Then it succeeds, rebuilt only the selection, and the referential check still saw customers
    assert retry.status == SUCCESS, retry.error
    assert {row.model_nm for row in retry.models} == set(selection)
    cards = read_lake_table(s3, bucket, "formatted/mwaa_blog_cards/")
    assert cards.num_rows == 30
    exceptions = read_lake_table(s3, bucket, "formatted_exception/mwaa_blog_cards_exception/")
    assert exceptions.num_rows == len(EXPECTED_CARD_EXCEPTIONS)


def test_missing_setting_fails_before_any_model_with_dbt_reason(tmp_path: Path) -> None:
    # Given the local target without the S3 endpoint it needs
    minimal_env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}

    # When the project is built
    outcome = run_dbt_local(
        DBT_PROJECT, selection=None, vars={}, env={"LAKEGOV_FORMATTED_BUCKET": "unused"},
        run_dir=tmp_path / "run", base_env=minimal_env, timeout_s=120,
    )  # fmt: skip

    # Then dbt stops at parsing, and the outcome says which variable is missing
    assert outcome.status == FAILED
    assert outcome.return_code == 2
    assert outcome.models == []
    assert outcome.error and "LAKEGOV_S3_ENDPOINT" in outcome.error

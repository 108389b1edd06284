"""On the embedded runtime, a dbt test that fails in a product's real run (dbt-duckdb, the
demo's project plus one test that finds two cards) shows in the lake's ``test_results``
table, read with Athena SQL, next to the run's passing tests."""

from __future__ import annotations

import shutil

import pytest
from tests.conftest import ROOT

from lakegov.local import demo as demo_steps
from lakegov.local.runtime import LocalRuntime
from lakegov.products.publish import publish_project

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("runtime")]

FAILING_TEST = "two_cards_are_too_many"
# a singular dbt test: its rows are its failures (two of the clean cards)
FAILING_SQL = "select cc_number from {{ ref('mwaa_blog_cards') }} order by cc_number limit 2\n"


def test_a_failing_dbt_test_of_a_real_run_shows_in_test_results(tmp_path):
    project = tmp_path / "dbt"
    shutil.copytree(ROOT / "dbt", project, ignore=shutil.ignore_patterns("target", "logs"))
    (project / "tests").mkdir(exist_ok=True)
    (project / "tests" / f"{FAILING_TEST}.sql").write_text(FAILING_SQL)
    with LocalRuntime(ROOT / "template.yaml", stack_name="e2e-failing-test") as rt:
        d = demo_steps.Demo(rt)
        config = d.out["ConfigBucketName"]
        # Given the product's project with one test that fails, published as the demo does
        publish_project(rt.client("s3"), config, project)
        key = "products/customers_cards.json"
        d.upload(config, key, demo_steps._example(key))
        d.wait("GovernanceApplied", lambda e: e["document"]["key"] == key)
        # When both inputs land and the product runs
        demo_steps.step_convert(d)
        demo_steps.step_catalog(d)
        finished = d.wait(
            "ProductRunFinished", lambda e: e["product"] == "customers_cards", timeout=300
        )
        # Then the run failed on that test, and test_results says so, with its failures
        assert finished["status"] == "FAILED"
        outcome = demo_steps._query(
            d,
            "SELECT test_name, status, failures, run_id FROM "
            "lakegov_dev_formatted.test_results ORDER BY test_name",
        )
        assert outcome.succeeded, outcome.reason
        rows = {r[0]: r for r in outcome.rows}
        assert list(rows[FAILING_TEST][1:]) == ["fail", "2", finished["run_id"]]
        passing = [r for name, r in rows.items() if name != FAILING_TEST]
        assert len(passing) == 10 and all(r[1] == "pass" for r in passing)

"""After the demo's product run on the embedded runtime: audit_control and test_results are
tables Athena SQL reads, the original governance document's grant on audit_control resolves,
every recorded OpenLineage event meets the specification, and `lakegov lineage --html`
draws a page a headless browser renders without errors."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from tests.conftest import ROOT

from lakegov.cli import main
from lakegov.governance import validate
from lakegov.lineage.openlineage import event_issues
from lakegov.local import demo as demo_steps
from lakegov.local.runtime import LocalRuntime

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("runtime")]

FORMATTED_DB = "lakegov_dev_formatted"
ORIGINAL_FIELDS = [
    "model_nm",
    "process_nm",
    "execution_start_date",
    "execution_end_date",
    "execution_status",
    "execution_failure_reason",
    "rows_affected",
]


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """The demo up to its product run (files converted, catalogued, the product built)."""
    with LocalRuntime(ROOT / "template.yaml", stack_name="e2e-lineage") as rt:
        d = demo_steps.Demo(rt)
        for step in (
            demo_steps.step_governance,
            demo_steps.step_subscriptions,
            demo_steps.step_product_setup,
            demo_steps.step_convert,
            demo_steps.step_catalog,
            demo_steps.step_product_run,
        ):
            step(d)
        outputs = tmp_path_factory.mktemp("lineage") / "outputs.json"
        outputs.write_text(
            json.dumps({**rt.outputs, "EndpointUrl": rt.endpoint_url, "Region": rt.region})
        )
        rt.wait_for_event(
            "LineageRecorded", lambda d: d["job"] == "product.customers_cards.mwaa_blog_cards"
        )
        yield rt, d, outputs


def query(d, sql):
    outcome = demo_steps._query(d, sql)
    assert outcome.succeeded, outcome.reason
    return outcome


def test_audit_control_is_a_table_with_one_row_per_model_run(ran):
    _, d, _ = ran
    outcome = query(d, f"SELECT * FROM {FORMATTED_DB}.audit_control")
    columns = [c[0] for c in outcome.columns]
    assert columns[:7] == ORIGINAL_FIELDS
    rows = [dict(zip(columns, r, strict=True)) for r in outcome.rows]
    models = sorted(r["model_nm"] for r in rows)
    assert models == [
        "mwaa_blog_cards",
        "mwaa_blog_cards_exception",
        "mwaa_blog_customers",
        "mwaa_blog_customers_exception",
    ]
    assert {r["process_nm"] for r in rows} == {"customers_cards"}
    assert {r["execution_status"] for r in rows} == {"SUCCESS"}
    assert all(r["run_date"] and r["run_id"] and r["runner"] == "local" for r in rows)
    cards = next(r for r in rows if r["model_nm"] == "mwaa_blog_cards")
    assert int(cards["rows_affected"]) == 30


def test_test_results_holds_every_dbt_test_of_the_run(ran):
    _, d, _ = ran
    outcome = query(
        d, f"SELECT test_name, status, failures FROM {FORMATTED_DB}.test_results ORDER BY test_name"
    )
    assert len(outcome.rows) == 10
    assert {r[1] for r in outcome.rows} == {"pass"}


def test_the_original_governance_grant_on_audit_control_resolves_to_a_real_table(ran):
    rt, d, _ = ran
    # The post's document, with this deployment's database names
    document = [
        {
            "role_arn": f"arn:aws:iam::{rt.account}:role/auditor",
            "access_type": "GRANT",
            "lf_tags": [],
            "named_data_catalog": [
                {"Database": f" {FORMATTED_DB}", "Table": "audit_control"},
                {"Database": " lakegov_dev_formatted_stg", "Table": "*"},
            ],
            "table_permissions": ["SELECT", "DESCRIBE"],
        }
    ]
    validate(document, source="lf_tags_metadata.json")  # raises on an invalid document
    key = "governance/audit_reader.json"
    d.upload(rt.outputs["ConfigBucketName"], key, json.dumps(document).encode())
    applied = d.wait("GovernanceApplied", demo_steps.document_is(key))
    assert applied["failed"] == 0
    auditor = f"arn:aws:iam::{rt.account}:role/auditor"
    outcome = demo_steps._query(
        d, f"SELECT count(*) FROM {FORMATTED_DB}.audit_control", principal=auditor
    )
    assert outcome.succeeded, outcome.reason
    assert int(outcome.rows[0][0]) == 4


def test_every_recorded_lineage_event_meets_the_openlineage_spec(ran):
    rt, _, _ = ran
    s3 = rt.client("s3")
    bucket = rt.outputs["FormattedBucketName"]
    keys = [
        o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="lineage_events/")["Contents"]
    ]
    events = []
    for key in keys:
        table = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        events += [json.loads(e) for e in table.column("event").to_pylist()]
    jobs = {e["job"]["name"] for e in events}
    assert {
        "convert.mwaa_blog_cards",
        "register.mwaa_blog_cards",
        "product.customers_cards.mwaa_blog_cards",
    } <= jobs
    for event in events:
        assert event_issues(event) == [], event["job"]["name"]
    cards = next(e for e in events if e["job"]["name"] == "product.customers_cards.mwaa_blog_cards")
    inputs = {i["name"] for i in cards["inputs"]}
    assert "table/lakegov_dev_formatted_stg/mwaa_blog_cards" in inputs
    assert "table/lakegov_dev_formatted/mwaa_blog_customers" in inputs
    (output,) = cards["outputs"]
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == 30
    assertions = output["facets"]["dataQualityAssertions"]["assertions"]
    assert {a["assertion"] for a in assertions} >= {"not_null", "unique", "relationships"}
    recorded = [e["detail"] for e in rt.events_of("LineageRecorded")]
    assert all(r["datazone"].startswith("skipped: ") for r in recorded)


def test_lakegov_lineage_draws_the_cards_table(ran, tmp_path, capsys):
    _, _, outputs = ran
    page = tmp_path / "cards.html"
    code = main(["lineage", "mwaa_blog_cards", "--outputs", str(outputs), "--html", str(page)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "cards.csv  --[convert mwaa_blog_cards]-->  formatted_stg/mwaa_blog_cards" in out
    assert (
        "--[product customers_cards: mwaa_blog_cards]-->  lakegov_dev_formatted.mwaa_blog_cards"
        in out
    )
    assert "--subscribed-->  domain marketing" in out
    html = page.read_text()
    assert "<script src" not in html and "http://" not in html.replace("http://www.w3.org", "")
    check_in_browser(page, tmp_path)


def check_in_browser(page: Path, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (chromium and driver_path):
        if os.environ.get("LAKEGOV_REQUIRE_BROWSER") == "1":
            pytest.fail("LAKEGOV_REQUIRE_BROWSER=1 but chromium/chromedriver are not installed")
        pytest.skip("no chromium and chromedriver on this machine")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1900,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        browser.get(page.as_uri())
        nodes = browser.find_elements(By.CSS_SELECTOR, "svg#lineage g.node")
        labels = {n.get_attribute("data-id"): n.text for n in nodes}
        assert len(nodes) >= 8
        assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-nodes") == str(
            len(nodes)
        )
        assert any("mwaa_blog_cards" in t for t in labels.values())
        focus = browser.find_elements(By.CSS_SELECTOR, "g.node.focus")
        assert focus and all(n.is_displayed() for n in focus)
        # clicking a node follows its lineage: unrelated nodes dim
        focus[0].click()
        assert browser.find_elements(By.CSS_SELECTOR, "path.edge.lit")
        errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert errors == []
        focus[0].click()
        if os.environ.get("LAKEGOV_SCREENSHOT"):  # the README's picture
            svg = browser.find_element(By.ID, "lineage")
            browser.set_window_size(svg.size["width"] + 80, svg.size["height"] + 240)
            svg.screenshot(os.environ["LAKEGOV_SCREENSHOT"])
            shutil.copy(page, Path(os.environ["LAKEGOV_SCREENSHOT"]).with_suffix(".html"))
    finally:
        browser.quit()

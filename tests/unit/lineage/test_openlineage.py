"""OpenLineage run events built from lakegov's events meet the specification (the vendored
JSON Schemas), name datasets as OpenLineage names them, and are stable under redelivery."""

from __future__ import annotations

import copy
import json

import pytest
from tests.conftest import EVENTS_DIR, ROOT

from lakegov.lineage.openlineage import (
    LineageContractError,
    Namespaces,
    conversion_events,
    event_issues,
    product_run_events,
    registration_event,
    validate_event,
)
from lakegov.runners.dbt_results import audit_rows, dbt_test_results

NS = Namespaces("us-east-1", "123456789012")
ARTIFACTS = ROOT / "tests" / "unit" / "runners" / "fixtures"


def dataset_refreshed() -> dict:
    return json.loads((EVENTS_DIR / "dataset_refreshed.json").read_text())["detail"]


def test_each_landed_object_of_a_refresh_is_converted_into_the_staging_folder():
    detail = {
        **dataset_refreshed(),
        "source_files": ["s3://raw/a/cards.csv", "s3://raw/b/cards.csv"],
    }
    events = conversion_events(detail, "lakegov-dev-formatted")
    assert [e["inputs"] for e in events] == [
        [{"namespace": "s3://raw", "name": "a/cards.csv"}],
        [{"namespace": "s3://raw", "name": "b/cards.csv"}],
    ]
    for event in events:
        assert event_issues(event) == []
        assert event["job"]["name"] == "convert.mwaa_blog_cards"
        assert event["outputs"] == [
            {"namespace": "s3://lakegov-dev-formatted", "name": "formatted_stg/mwaa_blog_cards"}
        ]
    # the same delivery again is the same runs; another refresh, other runs
    assert [e["run"]["runId"] for e in conversion_events(detail, "lakegov-dev-formatted")] == [
        e["run"]["runId"] for e in events
    ]
    later = {**detail, "refreshed_at": "2026-11-21T00:00:00Z"}
    assert conversion_events(later, "f")[0]["run"]["runId"] != events[0]["run"]["runId"]


def test_a_registration_reads_the_staging_folder_and_writes_the_glue_table():
    detail = dataset_refreshed()
    event = registration_event(detail, NS, "lakegov-dev-formatted")
    assert event_issues(event) == []
    (output,) = event["outputs"]
    assert output["namespace"] == "arn:aws:glue:us-east-1:123456789012"
    assert output["name"] == f"table/{detail['database']}/{detail['table']}"
    assert event["inputs"][0]["name"] == f"formatted_stg/{detail['table']}"
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == detail["row_count"]


@pytest.mark.parametrize("case", ["success", "cards_error"])
def test_a_product_run_gives_one_event_per_model_that_ran(case):
    results = json.loads((ARTIFACTS / case / "run_results.json").read_text())
    manifest = json.loads((ARTIFACTS / case / "manifest.json").read_text())
    for node in manifest["nodes"].values():  # the fixtures were trimmed of what dbt writes here
        if node["resource_type"] == "model":
            layer = "formatted_exception" if node["name"].endswith("_exception") else "formatted"
            node["schema"] = f"lakegov_dev_{layer}"
    models = [
        {**r.to_dict(), "unique_id": r.unique_id}
        for r in audit_rows(results, manifest, process_nm="customers_cards")
    ]
    events = product_run_events(
        product="customers_cards",
        run_id="20261120T100000Z-g1-a1",
        finished_at="2026-11-20T10:05:00Z",
        models=models,
        tests=dbt_test_results(results, manifest),
        manifest=manifest,
        ns=NS,
        database_of={"formatted_stg": "lakegov_dev_formatted_stg"},
    )
    for event in events:
        assert event_issues(event) == [], event["job"]["name"]
    by_job = {e["job"]["name"]: e for e in events}
    cards = by_job["product.customers_cards.mwaa_blog_cards"]
    # through the ephemeral dq model: the staged cards and the clean customers
    assert sorted(i["name"] for i in cards["inputs"]) == [
        "table/lakegov_dev_formatted/mwaa_blog_customers",
        "table/lakegov_dev_formatted_stg/mwaa_blog_cards",
    ]
    assert cards["outputs"][0]["name"] == "table/lakegov_dev_formatted/mwaa_blog_cards"
    if case == "success":
        assert {e["eventType"] for e in events} == {"COMPLETE"}
        (output,) = cards["outputs"]
        assertions = output["facets"]["dataQualityAssertions"]["assertions"]
        assert {a["name"] for a in assertions} >= {"unique_mwaa_blog_cards_cc_number"}
        assert all(a["success"] for a in assertions)
    else:
        assert cards["eventType"] == "FAIL"
        assert "cc_expiry_date" in cards["run"]["facets"]["errorMessage"]["message"]


def test_an_event_that_breaks_the_spec_is_refused_with_the_place_it_breaks():
    event = registration_event(dataset_refreshed(), NS, "lakegov-dev-formatted")
    broken = copy.deepcopy(event)
    del broken["producer"]
    with pytest.raises(LineageContractError, match="producer"):
        validate_event(broken)
    bad_facet = copy.deepcopy(event)
    bad_facet["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] = "many"
    assert any("outputStatistics" in i for i in event_issues(bad_facet))
    bad_type = copy.deepcopy(event)
    bad_type["eventType"] = "FINISHED"
    assert event_issues(bad_type)


def test_a_models_lineage_is_named_by_the_table_it_wrote_else_by_its_job():
    from lakegov.lineage.service import dataset_written

    model = {
        "job": {"name": "product.p.cards"},
        "outputs": [
            {"namespace": "arn:aws:glue:us-east-1:1", "name": "table/lakegov_dev_formatted/cards"}
        ],
    }
    assert dataset_written(model) == "lakegov_dev_formatted.cards"
    assert dataset_written(model, "mwaa/blog/cards") == "mwaa/blog/cards"
    assert dataset_written({"job": {"name": "convert.t"}, "outputs": []}) == "convert.t"

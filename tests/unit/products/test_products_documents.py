"""Product documents: the schema and the checks it cannot express, valid and invalid examples."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.conftest import ROOT

from lakegov.products.documents import product_kind, validate_product
from lakegov.products.model import DatasetRef, Product, duration_seconds, event_keys, rate_seconds

EXAMPLE = json.loads((ROOT / "examples/products/customers_cards.json").read_text())
MINIMAL = {"name": "p", "depends_on": ["orders"], "dbt": {"models": ["orders_daily"]}}


def errors(document: Any) -> list[str]:
    return [f"{i.path}: {i.message}" for i in validate_product(document) if i.severity == "error"]


@pytest.mark.parametrize(
    "document",
    [
        EXAMPLE,
        MINIMAL,
        {**MINIMAL, "policy": "any", "max_age": 3600, "runner": {"type": "local", "threads": 2}},
        {
            **MINIMAL,
            "runner": {"type": "codebuild", "project_name": "dbt-x", "timeout_minutes": 30},
        },
        {
            **MINIMAL,
            "runner": {
                "type": "stepfunctions",
                "state_machine_arn": "arn:aws:states:us-east-1:123456789012:stateMachine:dbt",
            },
        },
        {**MINIMAL, "runner": {"type": "mwaa", "environment_name": "env", "dag_id": "dbt_build"}},
        {
            **MINIMAL,
            "runner": {
                "type": "ecs",
                "cluster": "c",
                "task_definition": "dbt:3",
                "container_name": "dbt",
                "subnets": ["subnet-0a1b"],
                "security_groups": ["sg-0a1b"],
            },
        },
        {
            **MINIMAL,
            "depends_on": [
                {"dataset": "sales/orders"},
                {"table": "t", "layer": "formatted"},
                {"table": "u", "database": "shared_db"},
            ],
        },
        {**MINIMAL, "dbt": {"selector": "nightly"}},
    ],
)
def test_valid_documents_pass(document):
    assert errors(document) == []


@pytest.mark.parametrize(
    ("document", "path", "words"),
    [
        (
            {k: v for k, v in MINIMAL.items() if k != "depends_on"},
            "$",
            "missing required field 'depends_on'",
        ),
        ({**MINIMAL, "name": "Bad Name"}, "$.name", "does not match"),
        ({**MINIMAL, "depends_on": []}, "$.depends_on", "expected at least 1 item(s)"),
        ({**MINIMAL, "policy": "most"}, "$.policy", "expected one of"),
        ({**MINIMAL, "max_age": "6 hours"}, "$.max_age", "is not valid"),
        ({**MINIMAL, "schedule": "cron(0 1 * * ? *)"}, "$.schedule", "does not match"),
        ({**MINIMAL, "runner": {"type": "lambda"}}, "$.runner.type", "expected one of"),
        ({**MINIMAL, "runner": {"type": "mwaa", "dag_id": "d"}}, "$.runner", "'environment_name'"),
        (
            {**MINIMAL, "runner": {"type": "codebuild", "cluster": "c"}},
            "$.runner.cluster",
            "unknown field 'cluster'",
        ),
        ({**MINIMAL, "retry": {"max_attempts": 9}}, "$.retry.max_attempts", "maximum"),
        (
            {**MINIMAL, "depends_on": [{"table": "t", "layer": "a", "database": "b"}]},
            "$.depends_on[0]",
            "",
        ),
        ({**MINIMAL, "dbt": {"models": ["a"], "selector": "s"}}, "$.dbt.selector", "replaces"),
        (
            {**MINIMAL, "runner": {"type": "local"}, "dbt": {"selector": "s"}},
            "$.dbt.selector",
            "local",
        ),
        ({**MINIMAL, "refreshes": [{"dataset": "x"}]}, "$.refreshes[0]", "needs a table"),
        (
            {**MINIMAL, "depends_on": ["formatted.orders"], "refreshes": ["formatted.orders"]},
            "$.refreshes[0]",
            "trigger itself",
        ),
        (
            {**MINIMAL, "depends_on": ["orders"], "refreshes": ["formatted.orders"]},
            "$.refreshes[0]",
            "trigger itself",
        ),
    ],
)
def test_invalid_documents_are_refused_with_a_path_and_a_reason(document, path, words):
    found = errors(document)
    assert any(e.startswith(path + ":") and words in e for e in found), found


def test_warnings_do_not_refuse():
    issues = validate_product({**MINIMAL, "dbt": {}, "depends_on": ["a", "a"]})
    assert issues and all(i.severity == "warning" for i in issues)


def test_the_document_becomes_a_product():
    product = Product.from_document(EXAMPLE)
    assert product.select == ("tag:formatted", "tag:exception")
    assert product.max_age_s == 86400 and product.schedule_s == 86400
    assert product.dependency_keys("lakegov_dev_") == [
        "db:lakegov_dev_formatted_stg.mwaa_blog_cards",
        "db:lakegov_dev_formatted_stg.mwaa_blog_customers",
    ]
    first = product.outputs("lakegov_dev_")[0]
    assert (first.database, first.table) == (
        "lakegov_dev_formatted",
        "mwaa_blog_customers",
    )
    assert product.runner is None and product.runner_name("local") == "local"


def test_dataset_keys_match_what_an_event_carries():
    keys = event_keys("lakegov_dev_formatted_stg.orders", "lakegov_dev_formatted_stg", "orders")
    assert DatasetRef.parse("formatted_stg.orders").key("lakegov_dev_") in keys
    assert DatasetRef.parse("orders").key("lakegov_dev_") in keys
    assert DatasetRef.parse({"dataset": "lakegov_dev_formatted_stg.orders"}).key("") in keys
    assert DatasetRef.parse("formatted.orders").key("lakegov_dev_") not in keys


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT6H", 21600), ("P1D", 86400), ("PT30M", 1800), ("P1DT1S", 86401), (90, 90)],
)
def test_durations(text, seconds):
    assert duration_seconds(text) == seconds


def test_rates():
    assert rate_seconds("rate(1 day)") == 86400
    assert rate_seconds("rate(15 minutes)") == 900
    with pytest.raises(ValueError, match="rate"):
        rate_seconds("cron(0 1 * * ? *)")


def test_the_kind_serves_the_products_prefix():
    kind = product_kind()
    assert kind.prefix == "products/" and kind.name == "product" and kind.remove is not None
    assert kind.validate(MINIMAL, "products/p.json") == []


def test_the_upload_check_uses_the_deployments_database_prefix():
    # Given a product that refreshes the formatted table it depends on, named with the
    # deployment's prefix (offline, without the prefix, the two names differ)
    from lakegov.metadata.kinds import DeploymentRules

    document = {**MINIMAL, "depends_on": [{"database": "lakegov_dev_formatted", "table": "t"}]}
    document["refreshes"] = ["formatted.t"]
    kind = product_kind()
    assert kind.validate(document, "products/p.json") == []
    # When it is validated with the deployment's rules
    issues = kind.validate(
        document, "products/p.json", DeploymentRules(glue_database_prefix="lakegov_dev_")
    )
    # Then it is refused at the output's own path, on upload
    assert [(i.path, i.severity) for i in issues] == [("$.refreshes[0]", "error")]
    assert "trigger itself" in issues[0].message

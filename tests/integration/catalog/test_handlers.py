"""The two catalog handlers with the sample events of ``events/`` (moto behind get_app)."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from tests.conftest import load_event
from tests.integration.catalog.support import (
    AUDIT,
    BUS,
    CRAWLER_ROLE,
    FORMATTED,
    RAW,
    STAGING,
    put_parquet,
)

import lakegov.app
from lakegov.observability import metrics


@pytest.fixture
def function_env(env, monkeypatch):
    """The environment the template gives the catalog functions, on this moto account."""
    values = {
        "LAKEGOV_ENVIRONMENT": "test",
        "LAKEGOV_ACCOUNT_ID": "123456789012",
        "RAW_BUCKET": RAW,
        "FORMATTED_BUCKET": FORMATTED,
        "CONFIG_BUCKET": "lakegov-config",
        "SERVICE_BUS": BUS,
        "AUDIT_TABLE": AUDIT,
        "GLUE_DATABASE_PREFIX": "lakegov_test_",
        "CRAWLER_ROLE_ARN": CRAWLER_ROLE,
        "CATALOG_QUEUE_URL": env.queue_url,
        "POWERTOOLS_METRICS_DISABLED": "false",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(lakegov.app, "_apps", {})  # a cold container per test
    metrics.clear_metrics()
    return env


def _sqs_batch(*bodies):
    return {
        "Records": [
            {
                "messageId": f"msg-{i}",
                "receiptHandle": "rh",
                "body": json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:catalog",
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


def _sample_file_converted(env):
    event = load_event("file_converted.json")
    detail = event["detail"]
    detail["output_bucket"] = FORMATTED
    data = pa.table(
        {"customer_id": pa.array([1, 2, 3], pa.int64()), "name": list("abc"), "email": list("xyz")}
    )
    put_parquet(env.s3, detail["output_keys"][0], data)
    return event


def test_the_catalog_handler_registers_the_sample_file_converted(function_env, lambda_context):
    from handlers.catalog import handler

    env = function_env
    event = _sample_file_converted(env)
    result = handler(_sqs_batch(event, {"not": "an event"}), lambda_context)
    assert result == {"batchItemFailures": []}
    table = env.glue.get_table(DatabaseName=STAGING, Name="mwaa_blog_customers")["Table"]
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == [
        "customer_id",
        "name",
        "email",
    ]
    item = env.audit.get(
        "catalog",
        f"s3://{event['detail']['bucket']}/{event['detail']['key']}",
        event["detail"]["version_id"],
    )
    assert item["status"] == "PROCESSED"


def test_a_missing_database_is_audited_as_rejected_not_retried(function_env, lambda_context):
    from handlers.catalog import handler

    env = function_env
    event = _sample_file_converted(env)
    env.glue.delete_database(Name=STAGING)  # the table cannot be created: a permanent problem
    result = handler(_sqs_batch(event), lambda_context)
    assert result == {"batchItemFailures": []}  # not retried forever: audited instead
    item = env.audit.get(
        "catalog",
        f"s3://{event['detail']['bucket']}/{event['detail']['key']}",
        event["detail"]["version_id"],
    )
    assert item["status"] == "REJECTED" and "does not exist" in item["history"][-1]["note"]


def test_the_crawler_state_handler_takes_the_sample_success(function_env, lambda_context):
    from handlers.catalog_crawler import handler

    env = function_env
    event = load_event("glue_crawler_state_change_succeeded.json")
    env.glue.create_crawler(
        Name=event["detail"]["crawlerName"],
        Role=CRAWLER_ROLE,
        DatabaseName=STAGING,
        Targets={"S3Targets": [{"Path": f"s3://{FORMATTED}/formatted_stg/mwaa_blog_cards/"}]},
    )
    result = handler(event, lambda_context)
    assert result["status"] == "Succeeded"
    refreshes = env.audit.versions("dataset", "mwaa_blog_cards")
    assert [r["status"] for r in refreshes] == ["SUCCEEDED"]


def test_the_crawler_state_handler_reports_the_sample_failure_with_a_metric(
    function_env, lambda_context, capsys, caplog
):
    from handlers.catalog_crawler import handler

    event = load_event("glue_crawler_state_change_failed.json")
    result = handler(event, lambda_context)
    assert result["status"] == "Failed"
    out = capsys.readouterr().out.splitlines()
    emitted = [json.loads(line) for line in out if '"_aws"' in line]
    assert any(m.get("CrawlerFailed") == [1.0] or m.get("CrawlerFailed") == 1.0 for m in emitted)
    (logged,) = [r for r in caplog.records if r.getMessage().startswith("crawler failed")]
    assert logged.levelname == "ERROR" and "not authorized" in logged.reason

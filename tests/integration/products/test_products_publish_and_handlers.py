"""Publishing the dbt project (the CLI), and the handlers with the sample events on moto."""

from __future__ import annotations

import argparse
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from tests.conftest import load_event
from tests.integration.products.support import create_audit_table

from lakegov.app import _apps
from lakegov.audit import AuditStore
from lakegov.products.cli import register
from lakegov.products.publish import build_archive, publish_project
from lakegov.products.store import ProductStore


def make_project(root: Path) -> Path:
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text("name: example\n")
    (root / "profiles.yml").write_text("example: {}\n")
    (root / "models" / "a.sql").write_text("select 1 as x\n")
    (root / "target").mkdir()
    (root / "target" / "manifest.json").write_text("{}")
    (root / "logs").mkdir()
    (root / "logs" / "dbt.log").write_text("noise")
    return root


def test_the_archive_is_deterministic_and_leaves_build_output_out(tmp_path):
    project = make_project(tmp_path / "dbt")
    first, count = build_archive(project)
    (project / "models" / "a.sql").touch()  # a new mtime changes nothing
    second, _ = build_archive(project)
    assert first == second and count == 3
    names = zipfile.ZipFile(io.BytesIO(first)).namelist()
    assert names == ["dbt_project.yml", "models/a.sql", "profiles.yml"]


def test_publish_dbt_command_uploads_the_project(tmp_path, capsys):
    project = make_project(tmp_path / "dbt")
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="cfg")
        args = parser.parse_args(
            [
                "products",
                "publish-dbt",
                "--bucket",
                "cfg",
                "--project-dir",
                str(project),
                "--region",
                "us-east-1",
            ]
        )
        assert args.func(args) == 0
        body = s3.get_object(Bucket="cfg", Key="dbt/project.zip")["Body"].read()
        assert "models/a.sql" in zipfile.ZipFile(io.BytesIO(body)).namelist()
        again = publish_project(s3, "cfg", project)
        assert again.files == 3 and again.uri == "s3://cfg/dbt/project.zip"
    assert "published 3 files" in capsys.readouterr().out


def test_publishing_something_that_is_not_a_dbt_project_fails_clearly(tmp_path):
    from lakegov.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"no dbt_project\.yml"):
        build_archive(tmp_path)


ENV = {
    "LAKEGOV_ENVIRONMENT": "dev",
    "RAW_BUCKET": "raw",
    "FORMATTED_BUCKET": "formatted",
    "CONFIG_BUCKET": "cfg",
    "SERVICE_BUS": "svc",
    "AUDIT_TABLE": "audit",
    "GLUE_DATABASE_PREFIX": "lakegov_dev_",
    "LAKEGOV_ACCOUNT_ID": "123456789012",
    "DBT_CODEBUILD_PROJECT": "lakegov-dev-dbt",
}


@pytest.fixture
def deployed(monkeypatch):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    _apps.clear()
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        create_audit_table(ddb)
        boto3.client("events", region_name="us-east-1").create_event_bus(Name="svc")
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="cfg")
        codebuild = boto3.client("codebuild", region_name="us-east-1")
        codebuild.create_project(
            name="lakegov-dev-dbt",
            source={"type": "S3", "location": "cfg/dbt/project.zip"},
            artifacts={"type": "NO_ARTIFACTS"},
            environment={
                "type": "ARM_CONTAINER",
                "computeType": "BUILD_GENERAL1_SMALL",
                "image": "aws/codebuild/amazonlinux2-aarch64-standard:3.0",
            },
            serviceRole="arn:aws:iam::123456789012:role/dbt",
        )
        ProductStore("audit", ddb).put_definition(
            "customers_cards",
            {
                "name": "customers_cards",
                "depends_on": ["formatted_stg.mwaa_blog_cards"],
                "dbt": {"tags": ["formatted"]},
            },
            ["db:lakegov_dev_formatted_stg.mwaa_blog_cards"],
            source="s3://cfg/products/customers_cards.json",
            version="v1",
        )
        yield ddb
    _apps.clear()


def test_the_fan_in_handler_starts_a_codebuild_run_from_the_sample_event(deployed, lambda_context):
    from handlers import products

    result = products.handler(load_event("dataset_refreshed.json"), lambda_context)
    outcome = result["products"]["customers_cards"]
    assert outcome["started"] is True and outcome["runner"] == "codebuild"
    assert outcome["external_id"].startswith("arn:aws:codebuild:us-east-1:123456789012:build/")


def test_the_run_state_handler_finishes_the_run_from_a_codebuild_event(deployed, lambda_context):
    from handlers import products, products_runs

    started = products.handler(load_event("dataset_refreshed.json"), lambda_context)
    outcome = started["products"]["customers_cards"]
    event: dict[str, Any] = load_event("codebuild_state_change.json")
    event["detail"]["build-id"] = outcome["external_id"]
    result = products_runs.handler(event, lambda_context)
    # no artifacts (the build failed before dbt wrote them): the run is audited as failed and
    # retried with the product's own selection (max_attempts 2 by default)
    assert result["status"] == "FAILED" and result["will_retry"] is True
    run = AuditStore("audit", deployed).get("run", "customers_cards", outcome["run_id"])
    assert run["status"] == "FAILED" and "phase BUILD FAILED" in run["failure_reason"]
    assert result["next"]["started"] is True


def test_the_run_state_handler_ignores_other_events(deployed, lambda_context):
    from handlers import products_runs

    result = products_runs.handler(load_event("stepfunctions_state_change.json"), lambda_context)
    assert result == {"status": "IGNORED", "reason": "not a lakegov run"}
    swept = products_runs.handler(
        {
            **load_event("stepfunctions_state_change.json"),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "detail": {},
        },
        lambda_context,
    )
    assert json.dumps(swept) and "customers_cards" in swept["swept"]

"""``lakegov query --as``: the assumed role's Athena client."""

from __future__ import annotations

import boto3
from moto import mock_aws

from lakegov.ops.deployment import Deployment
from lakegov.query.cli import athena_client


def test_as_a_role_on_aws_talks_to_athena_not_to_sts(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        boto3.client("iam").create_role(RoleName="analyst", AssumeRolePolicyDocument="{}")
        athena = athena_client(
            Deployment({}, None, "eu-west-1"), "arn:aws:iam::123456789012:role/analyst"
        )
        assert athena.meta.endpoint_url == "https://athena.eu-west-1.amazonaws.com"
        assert athena.meta.region_name == "eu-west-1"

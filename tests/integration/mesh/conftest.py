"""Mesh integration fixtures: a central account and domain accounts on moto."""

import pytest
from moto import mock_aws
from tests.integration.mesh.mesh_helpers import (
    CENTRAL_ACCOUNT,
    CENTRAL_BUS,
    CENTRAL_BUS_ARN,
    CONFIG_BUCKET,
    REGION,
    Central,
    client_in,
)

from lakegov.settings import Settings


@pytest.fixture
def central():
    with mock_aws():
        events = client_in("events")
        events.create_event_bus(Name=CENTRAL_BUS)
        s3 = client_in("s3")
        s3.create_bucket(Bucket=CONFIG_BUCKET)
        settings = Settings(
            environment="dev",
            region=REGION,
            raw_bucket="raw",
            formatted_bucket="formatted",
            config_bucket=CONFIG_BUCKET,
            service_bus="lakegov-service",
            audit_table="audit",
            central_bus_arn=CENTRAL_BUS_ARN,
            account_id=CENTRAL_ACCOUNT,
            central_bus_role_arn=f"arn:aws:iam::{CENTRAL_ACCOUNT}:role/lakegov-central-delivery",
            mesh_dlq_arn=f"arn:aws:sqs:{REGION}:{CENTRAL_ACCOUNT}:lakegov-mesh-dlq",
        )
        yield Central(settings, events, s3)

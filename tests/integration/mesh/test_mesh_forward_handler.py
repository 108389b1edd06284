"""The forwarding function on an SQS batch of the mesh-forward queue (moto behind get_app)."""

from __future__ import annotations

import json

import pytest
from moto import mock_aws
from tests.conftest import (
    RefusingEvents,
    events_of_bus,
    load_event,
    put_events_calls,
    sqs_batch,
)

import lakegov.app

REGION = "us-east-1"
ACCOUNT = "123456789012"
CENTRAL_BUS = "lakegov-central"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:lakegov-MeshForwardQueue"


@pytest.fixture
def central(monkeypatch):
    """A central bus whose every lakegov event lands in a queue the test reads, and the
    environment the template gives the forwarding function."""
    with mock_aws():
        import boto3

        events = boto3.client("events", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        bus_arn = events.create_event_bus(Name=CENTRAL_BUS)["EventBusArn"]
        copies = events_of_bus(events, sqs, CENTRAL_BUS, {"source": ["lakegov"]})
        for name, value in {
            "LAKEGOV_ENVIRONMENT": "dev",
            "LAKEGOV_ACCOUNT_ID": ACCOUNT,
            "RAW_BUCKET": "raw",
            "FORMATTED_BUCKET": "formatted",
            "CONFIG_BUCKET": "config",
            "SERVICE_BUS": "lakegov-service",
            "AUDIT_TABLE": "audit",
            "CENTRAL_BUS_ARN": bus_arn,
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(lakegov.app, "_apps", {})  # a cold container per test

        yield copies


def _refresh(i: int) -> dict:
    """The sample DatasetRefreshed of ``events/``, as the rule queues it, one table per i."""
    event = load_event("dataset_refreshed.json")
    event["id"] = f"event-{i}"
    event["detail"]["table"] = f"t{i:02d}"
    del event["detail"]["producer_account"]  # the forwarder fills it in
    return event


def _batch(*bodies: str) -> dict:
    return sqs_batch(QUEUE_ARN, *bodies)


def test_a_batch_is_forwarded_in_put_events_calls_of_ten(central, lambda_context):
    from handlers.mesh_forward import handler

    # Given ten refreshes, a message that is no event, and two more refreshes on the queue
    bodies = [json.dumps(_refresh(i)) for i in range(12)]
    bodies.insert(10, "not an event")
    calls = put_events_calls(lakegov.app.get_app().clients("events"))
    # When the function receives them as one batch
    response = handler(_batch(*bodies), lambda_context)
    # Then nothing is retried (the malformed message is dropped), in two PutEvents calls
    assert response == {"batchItemFailures": []}
    assert calls == [10, 2]
    # and the central bus has each refresh once, with the producer's account
    copies = central()
    assert sorted(c["detail"]["table"] for c in copies) == [f"t{i:02d}" for i in range(12)]
    assert {c["detail"]["producer_account"] for c in copies} == {ACCOUNT}
    assert {c["detail-type"] for c in copies} == {"DatasetRefreshed"}


def test_a_refused_copy_is_the_only_batch_item_failure(central, lambda_context):
    from handlers.mesh_forward import handler

    # Given a central bus that refuses the copy of t02 on every attempt
    publisher = lakegov.app.get_app().central_publisher
    publisher.events_client = RefusingEvents(
        publisher.events_client, marker='"table":"t02"', times=publisher.attempts
    )
    # When a batch of four is forwarded
    response = handler(_batch(*(json.dumps(_refresh(i)) for i in range(4))), lambda_context)
    # Then that message alone is reported, for SQS to deliver again
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-2"}]}
    # the other three reached the bus once (only the refused entry was resent)
    assert publisher.events_client.calls == [4, 1, 1]
    assert sorted(c["detail"]["table"] for c in central()) == ["t00", "t01", "t03"]

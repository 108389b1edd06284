"""Shared fixtures: fake AWS credentials and region, Powertools settings, a Lambda context."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EVENTS_DIR = ROOT / "events"

# Before any boto3 import in a test: never reach a real account from the tests.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "lakegov",
        "POWERTOOLS_METRICS_NAMESPACE": "Lakegov",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
)
for _var in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(_var, None)

# Before any botocore session exists: every client refuses what AWS refuses.
from tests import strict_aws  # noqa: E402

strict_aws.install()


@pytest.fixture(autouse=True)
def strict_aws_limits() -> Any:
    """AWS's limits, enforced on every request of the test (tests may lower one)."""
    strict_aws.enable(True)
    saved = dataclasses.replace(strict_aws.LIMITS)
    yield strict_aws.LIMITS
    for f in dataclasses.fields(saved):
        setattr(strict_aws.LIMITS, f.name, getattr(saved, f.name))


class FakeLambdaContext:
    function_name = "lakegov-test"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:lakegov-test"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/lakegov-test"
    log_stream_name = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


def load_event(name: str) -> dict[str, Any]:
    """A sample event from ``events/`` (the same files ``sam local invoke -e`` takes)."""
    data: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))
    return data


@pytest.fixture
def sample_event() -> Any:
    return load_event


def sqs_batch(queue_arn: str, *bodies: str) -> dict[str, Any]:
    """An SQS event source's batch of ``bodies`` (message ids ``msg-0``, ``msg-1``...), as
    Lambda hands a function the messages of ``queue_arn``."""
    return {
        "Records": [
            {
                "messageId": f"msg-{i}",
                "receiptHandle": "rh",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": queue_arn.split(":")[3],
            }
            for i, body in enumerate(bodies)
        ]
    }


def events_of_bus(
    events: Any, sqs: Any, bus: str, pattern: dict[str, Any]
) -> Callable[[], list[dict[str, Any]]]:
    """A rule that queues the events of ``bus`` matching ``pattern``; what reads them: each
    call returns (and removes) the events queued since the last."""
    url = sqs.create_queue(QueueName=f"{bus}-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name=f"{bus}-events", EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=f"{bus}-events", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])

    def queued() -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            out += [json.loads(m["Body"]) for m in batch]
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
                ],
            )
        return out

    return queued


def put_events_calls(client: Any) -> list[int]:
    """The number of entries of each PutEvents call ``client`` makes from now on."""
    calls: list[int] = []
    client.meta.events.register(
        "provide-client-params.events.PutEvents",
        lambda params, **_: calls.append(len(params["Entries"])),
    )
    return calls


def create_audit_table(ddb: Any, name: str = "audit") -> None:
    """The audit table exactly as template.yaml declares it (keys and the by_kind index)."""
    from lakegov.local.template import load_template

    props = load_template(ROOT / "template.yaml")["Resources"]["AuditTable"]["Properties"]
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        BillingMode="PAY_PER_REQUEST",
        GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"],
    )


class RecordingPublisher:
    """Stands in for EventPublisher: checks each event against its contract, keeps it."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def publish(self, detail_type: str, detail: dict[str, Any], resources: Any = ()) -> None:
        from lakegov.events import validate_detail

        validate_detail(detail_type, detail)
        self.events.append((detail_type, dict(detail)))

    def publish_all(self, events: Any) -> None:
        for event in events:
            self.publish(event.detail_type, dict(event.detail), event.resources)

    def publish_each(self, events: Any) -> list[Any]:
        self.publish_all(events)
        return []  # nothing fails here

    def of(self, detail_type: str) -> list[dict[str, Any]]:
        return [d for t, d in self.events if t == detail_type]


class RefusingEvents:
    """An EventBridge client in front of ``client`` that refuses (never sends) the entries
    whose Detail contains ``marker``, on the next ``times`` calls that carry one, as
    PutEvents reports a partial failure; every call's entry count is kept in ``calls``."""

    def __init__(self, client: Any, marker: str = "", times: int = 0) -> None:
        self.client, self.marker, self.left = client, marker, times
        self.calls: list[int] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(len(Entries))
        refused = [bool(self.marker) and self.marker in e["Detail"] for e in Entries]
        if not self.left or not any(refused):
            return dict(self.client.put_events(Entries=Entries))
        self.left -= 1
        sent = [e for e, r in zip(Entries, refused, strict=True) if not r]
        answers = iter(self.client.put_events(Entries=sent)["Entries"] if sent else [])
        results = [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"} if r else next(answers)
            for r in refused
        ]
        failed = sum(1 for r in results if "ErrorCode" in r)
        return {"FailedEntryCount": failed, "Entries": results}

"""Helpers for the products' tests on moto: the audit table as template.yaml declares it,
a service bus, an alarm topic, the config bucket, and a ProductsContext with stand-in runners."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws
from tests.conftest import (
    create_audit_table,
)

from lakegov.audit import AuditStore
from lakegov.events import EventPublisher
from lakegov.metadata.kinds import ApplyContext, DocumentClients, DocumentRef
from lakegov.products.artifacts import DbtResults
from lakegov.products.context import ProductsContext
from lakegov.products.documents import apply_product
from lakegov.products.store import ProductStore
from lakegov.runners.base import RunRequest, RunStatus

REGION = "us-east-1"
TABLE = "audit"
BUS = "lakegov-service"
CONFIG_BUCKET = "lakegov-config"
GLUE_PREFIX = "lakegov_dev_"


@dataclass
class FakeSettings:
    audit_table: str = TABLE
    glue_database_prefix: str = GLUE_PREFIX
    config_bucket: str = CONFIG_BUCKET


@dataclass
class FakeRunner:
    """Stands in for a runner: records each start, returns ``<name>-<n>`` ids, or raises."""

    name: str = "codebuild"
    started: list[RunRequest] = field(default_factory=list)
    fail_with: Exception | None = None
    status: RunStatus = field(default_factory=lambda: RunStatus("RUNNING"))

    def start(self, request: RunRequest) -> str:
        if self.fail_with is not None:
            raise self.fail_with
        self.started.append(request)
        return f"{self.name}-{len(self.started)}"

    def describe(self, external_id: str, settings: Mapping[str, Any]) -> RunStatus:
        return self.status


@dataclass
class Clock:
    now: float = 1_795_000_000.0  # 2026-11-18

    def __call__(self) -> float:
        return self.now


class AtomicRequests:
    """A DynamoDB client whose requests run one at a time, as DynamoDB applies the writes to
    one item. moto checks a ConditionExpression and writes without a lock, so two threads can
    both pass the same condition (seen: both claims of one generation won); serialising
    whole requests keeps every interleaving *between* requests, which is what the fan-in must
    survive, and removes only the interleaving inside one request, which DynamoDB forbids."""

    _lock = threading.Lock()

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attr(*args, **kwargs)

        return call


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        ddb = AtomicRequests(boto3.client("dynamodb", region_name=REGION))
        create_audit_table(ddb)
        events = boto3.client("events", region_name=REGION)
        events.create_event_bus(Name=BUS)
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=CONFIG_BUCKET)
        sns = boto3.client("sns", region_name=REGION)
        topic = sns.create_topic(Name="alarms")["TopicArn"]
        sqs = boto3.client("sqs", region_name=REGION)
        alarm_queue = sqs.create_queue(QueueName="alarm-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=alarm_queue, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        yield {
            "ddb": ddb,
            "events": events,
            "s3": s3,
            "sns": sns,
            "sqs": sqs,
            "topic": topic,
            "alarm_queue": alarm_queue,
        }


@pytest.fixture
def runner() -> FakeRunner:
    return FakeRunner()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_context(
    aws: dict[str, Any],
    runners: Mapping[str, Any],
    clock: Clock,
    dbt: DbtResults | None = None,
    **overrides: Any,
) -> ProductsContext:
    return ProductsContext(
        store=ProductStore(TABLE, aws["ddb"]),
        audit=AuditStore(TABLE, aws["ddb"], clock=clock),
        publisher=EventPublisher(aws["events"], (BUS,), record=True),
        runners=lambda name: runners[name],
        s3=aws["s3"],
        config_bucket=CONFIG_BUCKET,
        glue_prefix=GLUE_PREFIX,
        default_runner="codebuild",
        sns=aws["sns"],
        alarm_topic_arn=aws["topic"],
        account_id="123456789012",
        environment="dev",
        clock=clock,
        dbt=dbt or DbtResults(),
        **overrides,
    )


@pytest.fixture
def ctx(aws: dict[str, Any], runner: FakeRunner, clock: Clock) -> ProductsContext:
    return make_context(aws, {"codebuild": runner, "local": runner}, clock)


def apply(
    aws: dict[str, Any], document: Mapping[str, Any], key: str | None = None
) -> dict[str, Any]:
    """Given a product document applied as the config path would."""
    ref = DocumentRef(CONFIG_BUCKET, key or f"products/{document['name']}.json", etag="e1")
    ctx = ApplyContext(
        document=ref,
        settings=FakeSettings(),
        clients=DocumentClients.from_factory(lambda s: aws.get({"dynamodb": "ddb"}.get(s, s))),
    )
    return apply_product(document, ctx)


def refreshed(
    table: str, layer: str = "formatted_stg", at: str = "2026-11-18T10:00:00Z", **extra: Any
) -> dict[str, Any]:
    """A DatasetRefreshed detail as the catalog publishes it."""
    return {
        "dataset": f"{GLUE_PREFIX}{layer}.{table}",
        "database": f"{GLUE_PREFIX}{layer}",
        "table": table,
        "refreshed_at": at,
        "mode": "direct",
        **extra,
    }


def alarms(aws: dict[str, Any]) -> list[dict[str, Any]]:
    messages = (
        aws["sqs"]
        .receive_message(QueueUrl=aws["alarm_queue"], MaxNumberOfMessages=10)
        .get("Messages", [])
    )
    return [json.loads(json.loads(m["Body"])["Message"]) for m in messages]

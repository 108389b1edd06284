"""Mesh integration helpers: a central account and domain accounts on moto."""

import json
import os
from dataclasses import dataclass, field
from typing import Any

import boto3

from lakegov.metadata.kinds import ApplyContext, DocumentClients, DocumentRef
from lakegov.settings import Settings

for _name, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}.items():
    os.environ.setdefault(_name, _value)

REGION = "us-east-1"
CENTRAL_ACCOUNT = "123456789012"
CENTRAL_BUS = "lakegov-central"
CENTRAL_BUS_ARN = f"arn:aws:events:{REGION}:{CENTRAL_ACCOUNT}:event-bus/{CENTRAL_BUS}"
CONFIG_BUCKET = "lakegov-config"


def client_in(service: str, account: str | None = None) -> Any:
    """A moto client in the central account, or in ``account`` (an assumed role there)."""
    if account is None or account == CENTRAL_ACCOUNT:
        return boto3.client(service, region_name=REGION)
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/test", RoleSessionName="test"
    )["Credentials"]
    return boto3.client(
        service,
        region_name=REGION,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


@dataclass
class Domain:
    """A domain account: its bus, and a queue that receives everything on it."""

    name: str
    account: str
    bus_arn: str
    queue_url: str
    sqs: Any = field(repr=False)

    def received(self) -> list[dict[str, Any]]:
        out = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10
            ).get("Messages", [])
            if not messages:
                return out
            for message in messages:
                out.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )


def make_domain(name: str, account: str) -> Domain:
    events, sqs = client_in("events", account), client_in("sqs", account)
    bus = f"lakegov-domain-{name}"
    bus_arn = events.create_event_bus(Name=bus)["EventBusArn"]
    url = sqs.create_queue(QueueName=f"{name}-pipelines")["QueueUrl"]
    events.put_rule(
        Name="to-pipelines", EventBusName=bus, EventPattern=json.dumps({"source": ["lakegov"]})
    )
    events.put_targets(
        Rule="to-pipelines",
        EventBusName=bus,
        Targets=[{"Id": "q", "Arn": f"arn:aws:sqs:{REGION}:{account}:{name}-pipelines"}],
    )
    return Domain(name, account, bus_arn, url, sqs)


@dataclass
class Central:
    settings: Settings
    events: Any
    s3: Any

    def ctx(self, key: str) -> ApplyContext:
        return ApplyContext(
            document=DocumentRef(bucket=CONFIG_BUCKET, key=key),
            settings=self.settings,
            clients=DocumentClients.from_factory(client_in),
        )

    def rules(self) -> dict[str, dict[str, Any]]:
        out = {}
        for rule in self.events.list_rules(EventBusName=CENTRAL_BUS)["Rules"]:
            targets = self.events.list_targets_by_rule(Rule=rule["Name"], EventBusName=CENTRAL_BUS)
            out[rule["Name"]] = {
                **rule,
                "pattern": json.loads(rule["EventPattern"]),
                "targets": targets["Targets"],
            }
        return out

    def refresh(self, dataset: str, detail_type: str = "DatasetRefreshed") -> None:
        detail = {
            "dataset": dataset,
            "database": "lakegov_dev_formatted",
            "table": dataset.replace("/", "_"),
            "refreshed_at": "2026-11-20T10:00:00.000Z",
        }
        if detail_type == "SchemaChanged":
            detail = {
                "dataset": dataset,
                "table": "t",
                "change": "additive",
                "action": "accepted",
                "detected_at": "2026-11-20T10:00:00.000Z",
            }
        response = self.events.put_events(
            Entries=[
                {
                    "Source": "lakegov",
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail),
                    "EventBusName": CENTRAL_BUS,
                }
            ]
        )
        assert response["FailedEntryCount"] == 0

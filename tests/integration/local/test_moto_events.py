"""The embedded runtime's PutEvents to another account's bus (lakegov.local.moto_events)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto import mock_aws
from tests import strict_aws

from lakegov.local import moto_events

CENTRAL, DOMAIN = "123456789012", "444400000009"
BUS_ARN = f"arn:aws:events:us-east-1:{CENTRAL}:event-bus/central"


@pytest.fixture
def accounts():
    moto_events.install()
    with mock_aws():
        central = {s: boto3.client(s, region_name="us-east-1") for s in ("events", "sqs")}
        central["events"].create_event_bus(Name="central")
        queue = central["sqs"].create_queue(QueueName="audit")["QueueUrl"]
        queue_arn = central["sqs"].get_queue_attributes(
            QueueUrl=queue, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        central["events"].put_rule(
            Name="reports", EventBusName="central", EventPattern='{"source": ["lakegov"]}'
        )
        # moto's default delivery drops ``account``: the target passes it on explicitly
        transformer = {
            "InputPathsMap": {"account": "$.account", "type": "$.detail-type"},
            "InputTemplate": '{"account": "<account>", "detail-type": "<type>"}',
        }
        central["events"].put_targets(
            Rule="reports",
            EventBusName="central",
            Targets=[{"Id": "q", "Arn": queue_arn, "InputTransformer": transformer}],
        )
        creds = boto3.client("sts", region_name="us-east-1").assume_role(
            RoleArn=f"arn:aws:iam::{DOMAIN}:role/share", RoleSessionName="domain"
        )["Credentials"]
        domain = boto3.client(
            "events",
            region_name="us-east-1",
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
        yield central, queue, domain


def _entry() -> dict[str, Any]:
    return {
        "Source": "lakegov",
        "DetailType": "AccessLinked",
        "Detail": json.dumps({"status": "DONE"}),
        "EventBusName": BUS_ARN,
    }


def _delivered(central: dict[str, Any], queue: str) -> list[dict[str, Any]]:
    messages = central["sqs"].receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def test_an_event_put_on_another_account_s_bus_needs_its_policy_and_carries_the_sender(
    accounts,
):
    central, queue, domain = accounts
    refused = domain.put_events(Entries=[_entry()])
    assert refused["FailedEntryCount"] == 1
    assert refused["Entries"][0]["ErrorCode"] == "AccessDeniedException"
    assert _delivered(central, queue) == []

    central["events"].put_permission(
        EventBusName="central", Action="events:PutEvents", Principal=DOMAIN, StatementId="d"
    )
    assert domain.put_events(Entries=[_entry()])["FailedEntryCount"] == 0
    (event,) = _delivered(central, queue)
    assert event["detail-type"] == "AccessLinked" and event["account"] == DOMAIN


def test_more_than_ten_entries_for_another_account_are_refused_as_on_aws(accounts):
    central, _, domain = accounts
    central["events"].put_permission(
        EventBusName="central", Action="events:PutEvents", Principal=DOMAIN, StatementId="d"
    )
    strict_aws.enable(False)  # the server's answer, not the test layer's
    with pytest.raises(domain.exceptions.ClientError, match="less than or equal to 10"):
        domain.put_events(Entries=[_entry() for _ in range(11)])


def test_a_rule_delivers_the_whole_event_with_its_account_as_aws_does(accounts):
    central, _, domain = accounts
    central["events"].put_permission(
        EventBusName="central", Action="events:PutEvents", Principal=DOMAIN, StatementId="d"
    )
    whole = central["sqs"].create_queue(QueueName="whole")["QueueUrl"]
    whole_arn = central["sqs"].get_queue_attributes(QueueUrl=whole, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    central["events"].put_rule(
        Name="whole", EventBusName="central", EventPattern='{"source": ["lakegov"]}'
    )
    # no InputTransformer: the target gets the event as sent, envelope and all
    central["events"].put_targets(
        Rule="whole", EventBusName="central", Targets=[{"Id": "w", "Arn": whole_arn}]
    )
    assert domain.put_events(Entries=[_entry()])["FailedEntryCount"] == 0
    (event,) = _delivered(central, whole)
    assert event["account"] == DOMAIN
    assert event["detail-type"] == "AccessLinked" and event["detail"] == {"status": "DONE"}


def test_s3_sends_one_event_per_object_and_tags_added_for_put_object_tagging_only():
    """AWS's S3 sends ``Object Tags Added`` for ``PutObjectTagging``; creating an object,
    with tags or without, copying one or completing a multipart upload is ``Object
    Created`` alone, once; a delete that leaves a delete marker is ``Object Deleted``."""
    moto_events.install()
    with mock_aws():
        s3, events, sqs = (
            boto3.client(s, region_name="us-east-1") for s in ("s3", "events", "sqs")
        )
        s3.create_bucket(Bucket="landing-zone")
        s3.put_bucket_notification_configuration(
            Bucket="landing-zone", NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
        url = sqs.create_queue(QueueName="seen")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(Name="s3", EventPattern=json.dumps({"source": ["aws.s3"]}))
        events.put_targets(Rule="s3", Targets=[{"Id": "q", "Arn": arn}])

        def seen() -> list[tuple[str, str]]:
            found = []
            while True:
                messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
                    "Messages", []
                )
                if not messages:
                    return found
                for m in messages:
                    body = json.loads(m["Body"])
                    found.append((body["detail-type"], body["detail"]["object"]["key"]))
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

        s3.put_object(Bucket="landing-zone", Key="a.csv", Body=b"x")
        s3.put_object(Bucket="landing-zone", Key="b.csv", Body=b"x", Tagging="team=sales")
        s3.copy_object(
            Bucket="landing-zone",
            Key="c.csv",
            CopySource={"Bucket": "landing-zone", "Key": "b.csv"},
            TaggingDirective="REPLACE",
            Tagging="team=ops",
        )
        upload = s3.create_multipart_upload(Bucket="landing-zone", Key="d.csv", Tagging="t=1")
        part = s3.upload_part(
            Bucket="landing-zone", Key="d.csv", UploadId=upload["UploadId"], PartNumber=1, Body=b"x"
        )
        s3.complete_multipart_upload(
            Bucket="landing-zone",
            Key="d.csv",
            UploadId=upload["UploadId"],
            MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
        )
        assert sorted(seen()) == [
            ("Object Created", "a.csv"),
            ("Object Created", "b.csv"),
            ("Object Created", "c.csv"),
            ("Object Created", "d.csv"),
        ]
        s3.put_object_tagging(
            Bucket="landing-zone", Key="a.csv", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]}
        )
        assert seen() == [("Object Tags Added", "a.csv")]
        # a delete in a versioned bucket leaves a delete marker: AWS says Object Deleted
        s3.put_bucket_versioning(
            Bucket="landing-zone", VersioningConfiguration={"Status": "Enabled"}
        )
        s3.put_object(Bucket="landing-zone", Key="e.csv", Body=b"x")
        marker = s3.delete_object(Bucket="landing-zone", Key="e.csv")
        assert marker["DeleteMarker"] is True
        assert seen() == [("Object Created", "e.csv"), ("Object Deleted", "e.csv")]
        # the tags themselves are set as before
        assert s3.get_object_tagging(Bucket="landing-zone", Key="b.csv")["TagSet"] == [
            {"Key": "team", "Value": "sales"}
        ]
        assert s3.get_object_tagging(Bucket="landing-zone", Key="d.csv")["TagSet"] == [
            {"Key": "t", "Value": "1"}
        ]

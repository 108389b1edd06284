"""The strict layer refuses what AWS refuses, on every client the tests and the code build."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from tests.conftest import create_audit_table

from lakegov.aws import Clients


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


@pytest.fixture
def aws():
    with mock_aws():
        yield Clients(region="us-east-1")  # a new session, as the Lambda handlers build


def test_dynamodb_items_over_400_kb_are_refused(aws):
    ddb = aws("dynamodb")
    create_audit_table(ddb)
    small = {"pk": {"S": "a"}, "sk": {"S": "b"}, "blob": {"S": "x" * 399_000}}
    ddb.put_item(TableName="audit", Item=small)
    big = {"pk": {"S": "a"}, "sk": {"S": "c"}, "blob": {"S": "x" * 410_000}}
    with pytest.raises(ClientError) as exc:
        ddb.put_item(TableName="audit", Item=big)
    assert _code(exc) == "ValidationException"


def test_queue_topic_and_bus_messages_over_256_kb_are_refused(aws):
    sqs, sns, events = aws("sqs"), aws("sns"), aws("events")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    body = "x" * (256 * 1024 + 1)
    with pytest.raises(ClientError) as exc:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    assert _code(exc) == "InvalidParameterValue"
    topic = sns.create_topic(Name="t")["TopicArn"]
    with pytest.raises(ClientError) as exc:
        sns.publish(TopicArn=topic, Message=body)
    assert _code(exc) == "InvalidParameter"
    entry = {"Source": "lakegov", "DetailType": "X", "Detail": json.dumps({"b": body})}
    with pytest.raises(ClientError) as exc:
        events.put_events(Entries=[entry])
    assert _code(exc) == "ValidationException"


def test_put_events_takes_at_most_ten_entries(aws):
    entry = {"Source": "lakegov", "DetailType": "X", "Detail": "{}"}
    aws("events").put_events(Entries=[entry] * 10)
    with pytest.raises(ClientError) as exc:
        aws("events").put_events(Entries=[entry] * 11)
    assert _code(exc) == "ValidationException"


def test_lake_formation_batches_take_at_most_twenty_entries(aws):
    entries = [
        {
            "Id": str(i),
            "Principal": {"DataLakePrincipalIdentifier": "arn:aws:iam::123456789012:role/r"},
            "Resource": {"Database": {"Name": f"db{i}"}},
            "Permissions": ["DESCRIBE"],
        }
        for i in range(21)
    ]
    with pytest.raises(ClientError) as exc:
        aws("lakeformation").batch_grant_permissions(Entries=entries)
    assert _code(exc) == "InvalidInputException"


def test_batch_create_partition_takes_at_most_a_hundred(aws):
    glue = aws("glue")
    glue.create_database(DatabaseInput={"Name": "db"})
    glue.create_table(
        DatabaseName="db",
        TableInput={"Name": "t", "PartitionKeys": [{"Name": "p", "Type": "string"}]},
    )
    partitions = [{"Values": [str(i)]} for i in range(101)]
    with pytest.raises(ClientError) as exc:
        glue.batch_create_partition(DatabaseName="db", TableName="t", PartitionInputList=partitions)
    assert _code(exc) == "ValidationException"


def test_copy_object_over_the_copy_limit_and_long_keys_are_refused(aws, strict_aws_limits):
    s3 = aws("s3")
    s3.create_bucket(Bucket="strict-bucket")
    s3.put_object(Bucket="strict-bucket", Key="big", Body=b"x" * 2048)
    strict_aws_limits.copy_object_bytes = 1024  # stands for 5 GiB
    with pytest.raises(ClientError) as exc:
        s3.copy_object(
            Bucket="strict-bucket", Key="copy", CopySource={"Bucket": "strict-bucket", "Key": "big"}
        )
    assert _code(exc) == "InvalidRequest"
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="strict-bucket", Key="k" * 1025, Body=b"")
    assert _code(exc) == "KeyTooLongError"


def test_async_lambda_payloads_over_256_kb_are_refused(aws):
    with pytest.raises(ClientError) as exc:
        aws("lambda").invoke(
            FunctionName="f", InvocationType="Event", Payload=b"x" * (256 * 1024 + 1)
        )
    assert _code(exc) == "RequestTooLargeException"


def test_the_default_session_is_strict_too():
    with mock_aws():
        events = boto3.client("events", region_name="us-east-1")
        entry = {"Source": "lakegov", "DetailType": "X", "Detail": "{}"}
        with pytest.raises(ClientError):
            events.put_events(Entries=[entry] * 11)


def test_the_publisher_splits_calls_at_ten_entries_and_256_kb(aws):
    from lakegov.events import Event, EventPublisher

    events = aws("events")
    events.create_event_bus(Name="svc")
    calls = []
    events.meta.events.register(
        "provide-client-params.events.PutEvents", lambda params, **_: calls.append(params)
    )
    detail = {
        "dataset": "d",
        "database": "db",
        "table": "t",
        "partitions": [],
        "row_count": 1,
        "source_files": [f"s3://raw/{'x' * 200}/{i}.csv" for i in range(200)],  # ~42 KB
        "data_files": [],
        "producer_account": "123456789012",
        "environment": "test",
        "mode": "direct",
        "refreshed_at": "2026-11-20T00:00:00Z",
    }
    publisher = EventPublisher(events, ("svc",))
    publisher.publish_all([Event("DatasetRefreshed", detail)] * 12)  # ~500 KB in all
    assert sum(len(c["Entries"]) for c in calls) == 12
    assert all(len(c["Entries"]) <= 10 for c in calls) and len(calls) >= 3

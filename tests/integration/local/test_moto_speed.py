"""moto's answers with and without each patch of lakegov.local.moto_speed: the same calls
on the same data answer the same, to the byte (pages, order, counts, errors included)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from lakegov.local import moto_speed


def _answer(call: Callable[[], dict[str, Any]]) -> Any:
    """A call's answer without its request metadata, or its error code and message."""
    try:
        answer = call()
    except ClientError as exc:
        return ("error", exc.response["Error"].get("Code"), exc.response["Error"].get("Message"))
    answer.pop("ResponseMetadata", None)
    return answer


def _with_and_without(
    monkeypatch: pytest.MonkeyPatch,
    owner: Any,
    name: str,
    patch: Callable[[], None],
    scenario: Callable[[], list[Any]],
) -> tuple[list[Any], list[Any]]:
    """``scenario``'s answers on moto as released, then with ``patch`` applied."""
    monkeypatch.setattr(owner, name, inspect.unwrap(getattr(owner, name)))
    with mock_aws():
        released = scenario()
    patch()
    assert getattr(owner, name).__wrapped__ is not None  # the patch is what runs now
    with mock_aws():
        patched = scenario()
    return released, patched


# -- DynamoDB Query --------------------------------------------------------------------


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _tables(ddb: Any) -> None:
    ddb.create_table(
        TableName="ranged",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": a, "AttributeType": t}
            for a, t in (("pk", "S"), ("sk", "S"), ("g", "S"), ("gr", "N"), ("l", "N"))
        ],
        GlobalSecondaryIndexes=[
            {  # with a range key; items without g or without gr are not in it
                "IndexName": "by_g",
                "KeySchema": [
                    {"AttributeName": "g", "KeyType": "HASH"},
                    {"AttributeName": "gr", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {  # without a range key, keys only
                "IndexName": "by_g_only",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
        ],
        LocalSecondaryIndexes=[
            {
                "IndexName": "by_l",
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "l", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["v"]},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.create_table(
        TableName="hashed",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "N"},
            {"AttributeName": "cat", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_cat",
                "KeySchema": [{"AttributeName": "cat", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    # written out of key order, so that no answer follows from the order of writing
    for i in (7, 3, 11, 0, 5, 9, 1, 13, 2, 8, 12, 4, 10, 6):
        for j in (4, 1, 3, 0, 2):
            item = {"pk": _s(f"p{i % 5}"), "sk": _s(f"s{i:02d}-{j}"), "v": _n(i * 10 + j)}
            if (i + j) % 4:  # sparse: a quarter of the items are in neither global index
                item["g"] = _s(f"g{(i + j) % 3}")
            if (i * j) % 5 != 1:  # some are in by_g_only but not in by_g
                item["gr"] = _n((i + j) % 4)  # equal range values: ties the table key breaks
            if j % 2 == 0:
                item["l"] = _n(20 - i)
            ddb.put_item(TableName="ranged", Item=item)
        ddb.put_item(TableName="hashed", Item={"id": _n(100 - i), "cat": _s(f"c{i % 3}")})
    ddb.delete_item(TableName="ranged", Key={"pk": _s("p2"), "sk": _s("s07-3")})
    ddb.get_item(TableName="ranged", Key={"pk": _s("p9"), "sk": _s("none")})  # no such key


def _pages(ddb: Any, **query: Any) -> list[Any]:
    """Every page of a query, as moto answers them."""
    pages: list[Any] = []
    while True:
        page = _answer(lambda: ddb.query(**query))
        pages.append(page)
        if not isinstance(page, dict) or "LastEvaluatedKey" not in page:
            return pages
        query = {**query, "ExclusiveStartKey": page["LastEvaluatedKey"]}


def _queries(ddb: Any) -> list[Any]:
    pk = "pk = :p"
    queries: list[dict[str, Any]] = [
        {"KeyConditionExpression": pk, "ExpressionAttributeValues": {":p": _s("p1")}},
        {"KeyConditionExpression": pk, "ExpressionAttributeValues": {":p": _s("p9")}},
        {
            "KeyConditionExpression": pk,
            "ExpressionAttributeValues": {":p": _s("p2")},
            "Limit": 4,
            "ScanIndexForward": False,
        },
        {
            "KeyConditionExpression": pk + " AND begins_with(sk, :b)",
            "ExpressionAttributeValues": {":p": _s("p3"), ":b": _s("s08")},
        },
        {
            "KeyConditionExpression": pk + " AND sk BETWEEN :a AND :z",
            "ExpressionAttributeValues": {
                ":p": _s("p0"),
                ":a": _s("s05"),
                ":z": _s("s10-2"),
                ":v": _n(101),
            },
            "Limit": 3,
            "FilterExpression": "v > :v",
        },
        {
            "KeyConditionExpression": pk + " AND sk > :a",
            "ExpressionAttributeValues": {":p": _s("p4"), ":a": _s("s04")},
            "ProjectionExpression": "sk, v",
            "ConsistentRead": True,
        },
        {
            "KeyConditionExpression": pk,
            "ExpressionAttributeValues": {":p": _s("p1")},
            "Select": "COUNT",
            "FilterExpression": "attribute_exists(g)",
        },
        {
            "IndexName": "by_g",
            "KeyConditionExpression": "g = :g",
            "ExpressionAttributeValues": {":g": _s("g1")},
            "Limit": 5,
        },
        {
            "IndexName": "by_g",
            "KeyConditionExpression": "g = :g AND gr >= :r",
            "ExpressionAttributeValues": {":g": _s("g2"), ":r": _n(2)},
            "ScanIndexForward": False,
            "Limit": 4,
        },
        {
            "IndexName": "by_g",
            "KeyConditionExpression": "g = :g",
            "ExpressionAttributeValues": {":g": _s("g0"), ":v": _n(60)},
            "FilterExpression": "v < :v",
            "Limit": 6,
        },
        {
            "IndexName": "by_g",
            "KeyConditionExpression": "g = :g",
            "ExpressionAttributeValues": {":g": _s("g0")},
            "ConsistentRead": True,  # refused on a global index
        },
        {
            "IndexName": "by_g_only",
            "KeyConditionExpression": "g = :g",
            "ExpressionAttributeValues": {":g": _s("g2")},
            "Limit": 7,
        },
        {
            "IndexName": "by_g_only",
            "KeyConditionExpression": "g = :g",
            "ExpressionAttributeValues": {":g": _s("g1")},
            "ScanIndexForward": False,
            "Select": "COUNT",
        },
        {
            "IndexName": "by_l",
            "KeyConditionExpression": pk + " AND l < :l",
            "ExpressionAttributeValues": {":p": _s("p3"), ":l": _n(15)},
            "Limit": 2,
            "ConsistentRead": True,
        },
        {
            "IndexName": "missing",
            "KeyConditionExpression": pk,
            "ExpressionAttributeValues": {":p": _s("p1")},
        },
    ]
    answers = []
    for query in queries:
        answers.append(_pages(ddb, TableName="ranged", **query))
    for query in (
        {"KeyConditionExpression": "id = :i", "ExpressionAttributeValues": {":i": _n(93)}},
        {"KeyConditionExpression": "id = :i", "ExpressionAttributeValues": {":i": _n(1)}},
        {
            "IndexName": "by_cat",
            "KeyConditionExpression": "cat = :c",
            "ExpressionAttributeValues": {":c": _s("c1")},
            "Limit": 2,
        },
    ):
        answers.append(_pages(ddb, TableName="hashed", **query))
    return answers


def test_query_answers_the_same_with_only_its_candidates(monkeypatch):
    from moto.dynamodb.models.table import Table

    def scenario() -> list[Any]:
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        _tables(ddb)
        return _queries(ddb)

    released, patched = _with_and_without(
        monkeypatch, Table, "query", moto_speed.query_only_candidates, scenario
    )
    assert patched == released
    # the scenario reaches what it means to: pages, sparse index items, refusals
    pages = [len(answer) for answer in released]
    assert max(pages) >= 3
    errors = [p for answer in released for p in answer if isinstance(p, tuple)]
    assert len(errors) == 2
    by_g_only = released[11]
    assert sum(p["Count"] for p in by_g_only) > sum(p["Count"] for p in released[7])


# -- SQS -------------------------------------------------------------------------------

_RANDOM = ("MessageId", "ReceiptHandle")


def _messages(answer: Any) -> Any:
    """A ReceiveMessage answer without what moto draws at random or reads off the clock."""
    if not isinstance(answer, dict):
        return answer
    return [
        {
            **{k: v for k, v in m.items() if k not in _RANDOM + ("Attributes",)},
            "Attributes": {
                k: v for k, v in m.get("Attributes", {}).items() if not k.endswith("Timestamp")
            },
        }
        for m in answer.get("Messages", [])
    ]


def _sqs_scenario() -> list[Any]:
    from moto.sqs.models import sqs_backends

    sqs = boto3.client("sqs", region_name="us-east-1")
    answers: list[Any] = []
    url = sqs.create_queue(QueueName="busy")["QueueUrl"]
    short = sqs.create_queue(QueueName="short", Attributes={"MessageRetentionPeriod": "60"})[
        "QueueUrl"
    ]
    for i in range(30):
        sqs.send_message(
            QueueUrl=url,
            MessageBody=f"m{i}",
            DelaySeconds=600 if i % 7 == 3 else 0,  # delayed for the whole test
            MessageAttributes={"n": {"DataType": "Number", "StringValue": str(i)}},
        )
    in_flight = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600)
    answers.append(_messages(in_flight))
    for names in (
        ["All"],
        ["ApproximateNumberOfMessages"],
        [
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
            "MessageRetentionPeriod",
        ],
    ):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        answers.append({k: v for k, v in attributes.items() if not k.endswith("Timestamp")})
    for _ in range(4):
        answer = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=3,
            VisibilityTimeout=600,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        answers.append(_messages(answer))
        handles = [m["ReceiptHandle"] for m in answer.get("Messages", [])]
        if handles:
            answers.append(
                _answer(lambda h=handles[0]: sqs.delete_message(QueueUrl=url, ReceiptHandle=h))
            )
            answers.append(
                _answer(lambda h=handles[0]: sqs.delete_message(QueueUrl=url, ReceiptHandle=h))
            )
    answers.append(_answer(lambda: sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")))
    # visible again at once: the first in-flight message's visibility ends
    first = in_flight["Messages"][0]["ReceiptHandle"]
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first, VisibilityTimeout=0)
    answers.append(_messages(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)))
    answers.append(
        sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
    )
    # retention: a message sent longer ago than the queue keeps messages is not handed out
    for i in range(3):
        sqs.send_message(QueueUrl=short, MessageBody=f"s{i}")
    queue = sqs_backends["123456789012"]["us-east-1"].queues["short"]
    queue._messages[1].sent_timestamp -= 61_000
    answers.append(_messages(sqs.receive_message(QueueUrl=short, MaxNumberOfMessages=10)))
    answers.append(_messages(sqs.receive_message(QueueUrl=short, MaxNumberOfMessages=10)))
    return answers


def test_sqs_answers_the_same_with_retention_and_clock_read_once(monkeypatch):
    from moto.sqs import models

    for owner, name in (
        (models.Queue, "messages"),
        (models.Queue, "approximate_number_of_messages"),
        (models.Queue, "approximate_number_of_messages_delayed"),
        (models.Queue, "approximate_number_of_messages_not_visible"),
        (models.Message, "had_receipt_handle"),
    ):
        current = owner.__dict__[name]
        if isinstance(current, property):
            monkeypatch.setattr(owner, name, property(inspect.unwrap(current.fget)))
        else:
            monkeypatch.setattr(owner, name, inspect.unwrap(current))

    def both_patches() -> None:
        moto_speed.sqs_retention_read_directly()
        moto_speed.sqs_one_clock_reading_per_pass()

    released, patched = _with_and_without(
        monkeypatch,
        models.SQSBackend,
        "is_message_valid_based_on_retention_period",
        both_patches,
        _sqs_scenario,
    )
    assert patched == released
    # the scenario reaches what it means to: in-flight and delayed messages counted, a
    # deleted handle and an unknown one, an expired message in the way
    everything = released[1]
    assert everything["ApproximateNumberOfMessagesNotVisible"] == "10"
    assert everything["ApproximateNumberOfMessagesDelayed"] == "4"
    assert everything["ApproximateNumberOfMessages"] == "16"
    assert ("error", "ReceiptHandleIsInvalid") == released[-5][:2]
    assert [m["Body"] for m in released[-2]] == ["s0"]
    assert [m["Body"] for m in released[-1]] == ["s2"]  # s1, expired, was taken in flight

"""moto's answers with and without each patch of lakegov.local.moto_speed: the same calls
on the same data answer the same, to the byte (pages, order, counts, errors included)."""

from __future__ import annotations

import copy
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
    except Exception as exc:  # moto's own failure (in-process, it reaches the caller)
        return ("raised", type(exc).__name__, str(exc))
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
        page = _answer(lambda q=query: ddb.query(**q))
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
            **{k: v for k, v in m.items() if k not in (*_RANDOM, "Attributes")},
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
    assert released[-5][:2] == ("error", "ReceiptHandleIsInvalid")
    assert [m["Body"] for m in released[-2]] == ["s0"]
    assert [m["Body"] for m in released[-1]] == ["s2"]  # s1, expired, was taken in flight


# -- DynamoDB UpdateItem ---------------------------------------------------------------

_ONE = {":a": _n(1)}
_TOTAL = {"#t": "total"}
_UPDATES: list[tuple[str, dict[str, Any]]] = [  # (sort key, UpdateItem's arguments)
    (
        "v1",
        {  # the audit's record: SET many, append to a history, REMOVE a lease
            "UpdateExpression": "SET #s = :s, #upd = :u, #h = list_append(if_not_exists(#h, "
            ":e), :h), #cre = if_not_exists(#cre, :u), #a0 = :a0, #a1 = :a1 REMOVE #lease",
            "ConditionExpression": "attribute_not_exists(#h) OR size(#h) < :limit",
            "ExpressionAttributeNames": {
                "#s": "status",
                "#upd": "updated_at",
                "#h": "history",
                "#cre": "created_at",
                "#a0": "a0",
                "#a1": "a1",
                "#lease": "lease_until",
            },
            "ExpressionAttributeValues": {
                ":s": _s("DONE"),
                ":u": _s("2026-12-01"),
                ":e": {"L": []},
                ":h": {"L": [{"M": {"status": _s("DONE")}}]},
                ":a0": _n(1),
                ":a1": _s("x"),
                ":limit": _n(3),
            },
            "ReturnValues": "ALL_NEW",
        },
    ),
    (
        "v1",
        {
            "UpdateExpression": "ADD #c :one, tags :t SET #t = #t + :n, m.k = :v",
            "ExpressionAttributeNames": {"#c": "count", **_TOTAL},
            "ExpressionAttributeValues": {
                ":one": _n(1),
                ":t": {"SS": ["a", "b"]},
                ":n": _n(5),
                ":v": _s("in a map"),
            },
            "ReturnValues": "UPDATED_NEW",
        },
    ),
    (
        "v1",
        {
            "UpdateExpression": "DELETE tags :t REMOVE l[2], l[0] SET l[1] = :v",
            "ExpressionAttributeValues": {":t": {"SS": ["a"]}, ":v": _s("second")},
            "ReturnValues": "UPDATED_OLD",
        },
    ),
    (
        "v1",
        {
            "UpdateExpression": "SET #t = :n",
            "ConditionExpression": "#t > :big",
            "ExpressionAttributeNames": _TOTAL,
            "ExpressionAttributeValues": {":n": _n(0), ":big": _n(1000)},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        },
    ),
    (
        "new",  # an update creates the item
        {
            "UpdateExpression": "SET #t = :a, created = :a",
            "ExpressionAttributeNames": _TOTAL,
            "ExpressionAttributeValues": _ONE,
            "ReturnValues": "ALL_NEW",
        },
    ),
    ("v1", {"UpdateExpression": "SET a = :a SET b = :a", "ExpressionAttributeValues": _ONE}),
    (
        "v1",
        {
            "UpdateExpression": "SET a = :a ADD b :a SET c = :a ADD d :a",
            "ExpressionAttributeValues": _ONE,
        },
    ),
    (
        "v1",
        {
            "UpdateExpression": "ADD a :a SET b = :a SET c = :a ADD d :a",
            "ExpressionAttributeValues": _ONE,
        },
    ),
    (
        "v1",
        {"UpdateExpression": "REMOVE a SET b = :a REMOVE c", "ExpressionAttributeValues": _ONE},
    ),
    ("v1", {"UpdateExpression": "SET m.k = :a, m = :a", "ExpressionAttributeValues": _ONE}),
    (
        "v1",
        {
            "UpdateExpression": "SET #x = :a, #y = :a",
            "ExpressionAttributeNames": {"#x": "same", "#y": "same"},
            "ExpressionAttributeValues": _ONE,
        },
    ),
    ("v1", {"UpdateExpression": "SET sk = :a", "ExpressionAttributeValues": _ONE}),
    ("v1", {"UpdateExpression": "SET #missing = :a", "ExpressionAttributeValues": _ONE}),
    ("v1", {"UpdateExpression": "SET a = :a, b = :nowhere", "ExpressionAttributeValues": _ONE}),
    ("v1", {"UpdateExpression": "SET a = = :a", "ExpressionAttributeValues": _ONE}),
    (
        "v1",
        {
            "UpdateExpression": "ADD #s :a",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": _ONE,
        },
    ),
    ("v1", {"UpdateExpression": "SET nothing.deeper = :a", "ExpressionAttributeValues": _ONE}),
    (
        "v1",
        {
            "UpdateExpression": "SET #t = #t + :a",
            "ExpressionAttributeNames": _TOTAL,
            "ExpressionAttributeValues": {":a": _s("not a number")},
        },
    ),
]


def _update_scenario() -> list[Any]:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    ddb.create_table(
        TableName="audit",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(
        TableName="audit",
        Item={
            "pk": _s("file#1"),
            "sk": _s("v1"),
            "status": _s("CLAIMED"),
            "lease_until": _n(99),
            "total": _n(10),
            "m": {"M": {"old": _s("kept")}},
            "l": {"L": [_s("a"), _s("b"), _s("c"), _s("d")]},
        },
    )
    answers = []
    for round_ in range(2):  # the second round meets every expression parsed already
        for sort_key, update in _UPDATES:
            key = {
                "pk": _s("file#1"),
                "sk": _s(f"{sort_key}-{round_}" if sort_key == "new" else sort_key),
            }
            answers.append(
                _answer(lambda k=key, u=update: ddb.update_item(TableName="audit", Key=k, **u))
            )
        answers.append(_answer(lambda: ddb.scan(TableName="audit", ConsistentRead=True)))
    return answers


def test_update_item_answers_the_same_with_expressions_parsed_once(monkeypatch):
    ast_nodes = pytest.importorskip("moto.dynamodb.parsing.ast_nodes")
    validators = pytest.importorskip("moto.dynamodb.parsing.validators")
    expressions = pytest.importorskip("moto.dynamodb.parsing.expressions")
    for owner, name in (
        (ast_nodes.DepthFirstTraverser, "process"),
        (validators.ActionCountValidator, "traverse"),
        (validators.OverlappingPathsValidator, "traverse"),
    ):
        monkeypatch.setattr(owner, name, inspect.unwrap(inspect.getattr_static(owner, name)))
    parser = expressions.UpdateExpressionParser
    monkeypatch.setattr(
        parser, "make", classmethod(inspect.unwrap(parser.__dict__["make"].__func__))
    )

    released, patched = _with_and_without(
        monkeypatch,
        ast_nodes.DepthFirstTraverser,
        "nodes_to_be_processed",
        moto_speed.update_expressions_parsed_once,
        _update_scenario,
    )
    assert patched == released
    # the scenario reaches what it means to: updates that change the item, refusals of
    # each kind, a second round that answers as the first
    half = len(released) // 2
    assert released[:half] != released[half:]  # the item changed between the rounds
    errors = [a[2] for a in released[:half] if isinstance(a, tuple)]
    assert len(errors) == 14
    # SET, ADD then SET, ADD: moto names the clause its walk meets first, from the end
    assert [e.split('"')[1] for e in errors if "can only be used once" in e] == [
        "SET",
        "ADD",
        "SET",
        "REMOVE",
    ]
    assert sum("overlap" in e for e in errors) == 2


def test_update_item_answers_the_same_with_trees_copied_directly(monkeypatch):
    ast_nodes = pytest.importorskip("moto.dynamodb.parsing.ast_nodes")
    monkeypatch.delattr(ast_nodes.Node, "__deepcopy__", raising=False)
    with mock_aws():
        released = _update_scenario()
    moto_speed.update_expression_trees_copied_directly()
    assert "__deepcopy__" in ast_nodes.Node.__dict__  # the patch is what runs now
    with mock_aws():
        patched = _update_scenario()
    assert patched == released
    assert sum(isinstance(a, tuple) for a in released) == 28  # refusals too, both rounds


def test_update_item_answers_the_same_with_walks_by_type(monkeypatch):
    ast_nodes = pytest.importorskip("moto.dynamodb.parsing.ast_nodes")
    released, patched = _with_and_without(
        monkeypatch,
        ast_nodes.DepthFirstTraverser,
        "traverse_node_recursively",
        moto_speed.update_expression_walks_by_type,
        _update_scenario,
    )
    assert patched == released
    assert sum(isinstance(a, tuple) for a in released) == 28  # refusals too, both rounds
    assert released[: len(released) // 2] != released[len(released) // 2 :]


# -- DynamoDB conditions ---------------------------------------------------------------


def _condition_scenario() -> list[Any]:
    """The same condition texts with other values and other names, conditions on writes,
    deletes, queries and scans, and refusals (a missing placeholder, a reserved word, bad
    syntax), each twice."""
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    _tables(ddb)
    answers: list[Any] = []
    for round_ in range(2):
        for limit, name in ((0, "amount"), (1000, "amount"), (5, "amount"), (0, "other")):
            condition = {
                "ConditionExpression": "attribute_not_exists(#t) OR #t < :limit",
                "ExpressionAttributeNames": {"#t": name},
                "ExpressionAttributeValues": {":limit": _n(limit), ":v": _n(limit + round_)},
            }
            answers.append(
                _answer(
                    lambda c=condition: ddb.update_item(
                        TableName="ranged",
                        Key={"pk": _s("a"), "sk": _s("1")},
                        UpdateExpression="SET amount = :v",
                        ReturnValues="ALL_NEW",
                        ReturnValuesOnConditionCheckFailure="ALL_OLD",
                        **c,
                    )
                )
            )
            answers.append(
                _answer(
                    lambda c=condition, r=round_, lim=limit: ddb.put_item(
                        TableName="ranged",
                        Item={"pk": _s("b"), "sk": _s(f"{r}-{lim}"), "total": _n(lim)},
                        **{k: v for k, v in c.items() if k != "ExpressionAttributeValues"},
                        ExpressionAttributeValues={":limit": _n(lim)},
                    )
                )
            )
        for low in (0, 3, 50):
            answers.append(
                _answer(
                    lambda lo=low: ddb.query(
                        TableName="ranged",
                        KeyConditionExpression="pk = :p",
                        FilterExpression="#t >= :low AND size(sk) > :one",
                        ExpressionAttributeNames={"#t": "total"},
                        ExpressionAttributeValues={":p": _s("b"), ":low": _n(lo), ":one": _n(1)},
                    )
                )
            )
            answers.append(
                _answer(
                    lambda lo=low: ddb.scan(
                        TableName="ranged",
                        FilterExpression="#t >= :low",
                        ExpressionAttributeNames={"#t": "total"},
                        ExpressionAttributeValues={":low": _n(lo)},
                    )
                )
            )
        answers.append(
            _answer(
                lambda r=round_: ddb.delete_item(
                    TableName="ranged",
                    Key={"pk": _s("b"), "sk": _s(f"{r}-0")},
                    ConditionExpression="#t = :zero",
                    ExpressionAttributeNames={"#t": "total"},
                    ExpressionAttributeValues={":zero": _n(0)},
                    ReturnValues="ALL_OLD",
                )
            )
        )
        for refused in (
            {"ConditionExpression": "#t < :missing", "ExpressionAttributeNames": _TOTAL},
            {"ConditionExpression": "#nowhere < :a", "ExpressionAttributeValues": _ONE},
            {"ConditionExpression": "size < :a", "ExpressionAttributeValues": _ONE},
            {"ConditionExpression": "total < < :a", "ExpressionAttributeValues": _ONE},
        ):
            answers.append(
                _answer(
                    lambda c=refused: ddb.put_item(
                        TableName="ranged", Item={"pk": _s("c"), "sk": _s("1")}, **c
                    )
                )
            )
        answers.append(_answer(lambda: ddb.scan(TableName="ranged", ConsistentRead=True)))
    return answers


def test_conditions_answer_the_same_parsed_once(monkeypatch):
    comparisons = pytest.importorskip("moto.dynamodb.comparisons")
    released, patched = _with_and_without(
        monkeypatch,
        comparisons.ConditionExpressionParser,
        "parse",
        moto_speed.condition_expressions_parsed_once,
        _condition_scenario,
    )
    assert patched == released
    # the scenario reaches what it means to: the same condition passing and failing with
    # other values and names, filters keeping more or fewer items, every refusal
    half = len(released) // 2
    first = released[:half]
    updates = first[0:8:2]
    assert [isinstance(a, tuple) for a in updates] == [False, False, True, False]
    assert updates[2][1] == "ConditionalCheckFailedException"
    assert released[half] != first[0]  # the same update, refused the second time round
    counts = [a["Count"] for a in first[8:14]]
    assert len(set(counts)) > 1
    assert all(isinstance(a, tuple) for a in first[15:19])  # each refusal refused


def test_item_sizes_are_moto_s_sizes(monkeypatch):
    dynamo_type = pytest.importorskip("moto.dynamodb.models.dynamo_type")
    kind = dynamo_type.DynamoType
    monkeypatch.setattr(kind, "size", inspect.unwrap(kind.__dict__["size"]))
    values = [
        _n(12345),
        _n(-0.5),
        _s("héllo"),
        _s(""),
        {"B": b"\x00\x01\x02"},
        {"BOOL": True},
        {"BOOL": False},
        {"NULL": True},
        {"SS": ["a", "bé", ""]},
        {"NS": ["1", "22.5"]},
        {"BS": [b"ab", b"c"]},
        {"L": [_s("x"), _n(7), {"M": {"k": {"L": [_s("deep")]}}}]},
        {"M": {"ké": _s("v"), "n": _n(3), "l": {"L": []}, "m": {"M": {"s": {"SS": ["q"]}}}}},
    ]
    released = [kind(v).size() for v in values]
    moto_speed.item_sizes_counted_directly()
    assert kind.size.__wrapped__ is not None  # the patch is what runs now
    assert [kind(v).size() for v in values] == released
    assert released[2] == 6 and released[8] == 4  # UTF-8 bytes, set members one by one


def test_item_size_limit_answers_the_same(monkeypatch):
    dynamo_type = pytest.importorskip("moto.dynamodb.models.dynamo_type")

    def scenario() -> list[Any]:
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        _tables(ddb)
        key = {"pk": _s("big"), "sk": _s("1")}
        answers = []
        for size in (100_000, 200_000, 120_000, 1):
            answers.append(
                _answer(
                    lambda n=size: ddb.update_item(
                        TableName="ranged",
                        Key=key,
                        UpdateExpression="SET #x = :x",
                        ExpressionAttributeNames={"#x": f"x{n}"},
                        ExpressionAttributeValues={":x": _s("é" * (n // 2))},
                        ReturnValues="UPDATED_NEW",
                    )
                )
            )
        answers.append(_answer(lambda: ddb.get_item(TableName="ranged", Key=key)))
        return answers

    released, patched = _with_and_without(
        monkeypatch,
        dynamo_type.DynamoType,
        "size",
        moto_speed.item_sizes_counted_directly,
        scenario,
    )
    assert patched == released
    assert [a[1] if isinstance(a, tuple) else "ok" for a in released[:4]] == [
        "ok",
        "ok",
        "ValidationException",  # over 400 KB: refused, the item as it was
        "ok",
    ]


def test_a_copied_tree_is_the_same_tree_sharing_nothing_with_its_original():
    ast_nodes = pytest.importorskip("moto.dynamodb.parsing.ast_nodes")
    expressions = pytest.importorskip("moto.dynamodb.parsing.expressions")
    moto_speed.update_expression_trees_copied_directly()
    tree = expressions.UpdateExpressionParser.make(
        "SET #a = list_append(if_not_exists(#a, :e), :h), b.c[2] = :v + :w REMOVE d ADD n :one"
    )

    def nodes(node: Any) -> list[Any]:
        below = [n for c in node.children or [] if isinstance(c, ast_nodes.Node) for n in nodes(c)]
        return [node, *below]

    def shape(node: Any) -> Any:
        return (
            type(node).__name__,
            node.type,
            [shape(c) if isinstance(c, ast_nodes.Node) else c for c in node.children or []],
        )

    copied = copy.deepcopy(tree)
    assert shape(copied) == shape(tree)
    originals, copies = nodes(tree), nodes(copied)
    assert len(copies) > 20
    assert not {id(n) for n in originals} & {id(n) for n in copies}
    by_original = {id(o): c for o, c in zip(originals, copies, strict=True)}
    for original, clone in zip(originals, copies, strict=True):  # parents point into the copy
        parent = getattr(original, "parent", None)
        assert getattr(clone, "parent", None) is (parent and by_original[id(parent)])


# -- dispatch --------------------------------------------------------------------------


def test_dispatch_lists_the_same_methods_and_converts_names_the_same(monkeypatch):
    import sys

    from moto.core import responses, utils
    from moto.dynamodb.responses import DynamoHandler
    from moto.sqs.responses import SQSResponse

    listed = inspect.unwrap(responses.method_names_from_class)
    convert = inspect.unwrap(utils.camelcase_to_underscores)
    monkeypatch.setattr(responses, "method_names_from_class", listed)
    for module in list(sys.modules.values()):
        if getattr(module, "camelcase_to_underscores", None) is utils.camelcase_to_underscores:
            monkeypatch.setattr(module, "camelcase_to_underscores", convert)
    names = ["UpdateItem", "ReceiveMessage", "ApproximateNumberOfMessagesNotVisible", "SSEType"]
    names += ["", "KMSMasterKeyId", "aB", "already_snake", "X"]
    expected = [convert(n) for n in names] + [convert(None)]

    moto_speed.dispatch_names_remembered()

    assert responses.method_names_from_class is not listed
    from moto.sqs import models  # imported before: given the remembered conversion

    assert models.camelcase_to_underscores is utils.camelcase_to_underscores
    for clazz in (DynamoHandler, SQSResponse, DynamoHandler):
        names_of = responses.method_names_from_class(clazz)
        assert names_of == listed(clazz) and "update_item" in listed(DynamoHandler)
        names_of.append("changed by a caller")  # each caller has its own list
    assert "changed by a caller" not in responses.method_names_from_class(DynamoHandler)
    for _ in range(2):
        assert [utils.camelcase_to_underscores(n) for n in names] + [
            utils.camelcase_to_underscores(None)
        ] == expected
    assert utils.camelcase_to_underscores(["not", "hashable"]) == convert(["not", "hashable"])


def test_random_strings_keep_their_form_and_follow_moto_s_seed(monkeypatch):
    import string

    from moto.moto_api._internal import mock_random
    from moto.moto_api._internal.moto_random import MotoRandom
    from moto.sqs import models

    draw = inspect.unwrap(MotoRandom.get_random_string)
    handle = inspect.unwrap(models.generate_receipt_handle)
    monkeypatch.setattr(MotoRandom, "get_random_string", draw)
    monkeypatch.setattr(models, "generate_receipt_handle", handle)
    released = [draw(mock_random, 52), draw(mock_random, 8, False, True), handle()]

    moto_speed.random_strings_drawn_at_once()

    def drawn() -> list[str]:
        return [
            mock_random.get_random_string(52),
            mock_random.get_random_string(8, include_digits=False, lower_case=True),
            models.generate_receipt_handle(),
        ]

    mock_random.seed(7)
    first = drawn()
    mock_random.seed(7)
    assert drawn() == first  # moto's seed repeats a run
    assert drawn() != first
    assert [len(s) for s in first] == [len(s) for s in released] == [52, 8, 185]
    alphabets = [
        string.ascii_letters + string.digits,
        string.ascii_lowercase,
        string.ascii_lowercase,
    ]
    assert all(set(s) <= set(a) for s, a in zip(first, alphabets, strict=True))

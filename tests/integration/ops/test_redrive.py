"""Dead-letter queues: found, explained, replayed to their source, selectively."""

import json

import boto3
import pytest
from moto import mock_aws

from lakegov.ops.redrive import describe_message, find_dead_letter_queues, peek, replay


def _s3_event(key):
    return json.dumps(
        {
            "detail-type": "Object Created",
            "source": "aws.s3",
            "detail": {"bucket": {"name": "raw"}, "object": {"key": key}},
        }
    )


@pytest.fixture
def sqs():
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        dlq = client.create_queue(QueueName="stack-ConvertDeadLetterQueue")["QueueUrl"]
        dlq_arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        client.create_queue(
            QueueName="stack-ConvertQueue",
            Attributes={
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})
            },
        )
        client.create_queue(QueueName="stack-Other")
        for key in ("a.csv", "b.csv", "c.csv"):
            client.send_message(QueueUrl=dlq, MessageBody=_s3_event(key))
        yield client


def test_dead_letter_queues_are_found_with_their_source(sqs):
    (dlq,) = find_dead_letter_queues(sqs)
    assert dlq.name == "stack-ConvertDeadLetterQueue" and dlq.depth == 3
    assert [s.rsplit("/", 1)[-1] for s in dlq.sources] == ["stack-ConvertQueue"]


def test_listing_explains_messages_and_leaves_them_in_place(sqs):
    (dlq,) = find_dead_letter_queues(sqs)
    messages = peek(sqs, dlq)
    assert sorted(m.summary for m in messages) == [
        "Object Created a.csv",
        "Object Created b.csv",
        "Object Created c.csv",
    ]
    (again,) = find_dead_letter_queues(sqs)
    assert again.depth == 3


def test_replay_of_selected_messages_moves_only_those(sqs):
    (dlq,) = find_dead_letter_queues(sqs)
    chosen = [m.message_id for m in peek(sqs, dlq) if "b.csv" in m.summary]
    counts = replay(sqs, dlq, message_ids=chosen)
    assert counts == {"replayed": 1, "skipped": 2, "kept": 0}
    source = sqs.get_queue_url(QueueName="stack-ConvertQueue")["QueueUrl"]
    moved = sqs.receive_message(QueueUrl=source, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"])["detail"]["object"]["key"] for m in moved] == ["b.csv"]
    (after,) = find_dead_letter_queues(sqs)
    assert after.depth == 2


def test_lambda_failure_records_are_replayed_as_invokes():
    record = {
        "requestContext": {
            "functionArn": "arn:aws:lambda:us-east-1:1:function:cfg:$LATEST",
            "condition": "RetriesExhausted",
        },
        "requestPayload": json.loads(_s3_event("governance/x.json")),
        "responsePayload": {"errorType": "RetryableError", "errorMessage": "throttled"},
    }
    what, why = describe_message(json.dumps(record))
    assert what == "Object Created governance/x.json"
    assert why == "RetriesExhausted: RetryableError throttled"
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        url = client.create_queue(QueueName="stack-ConfigDeadLetterQueue")["QueueUrl"]
        client.send_message(QueueUrl=url, MessageBody=json.dumps(record))
        (dlq,) = find_dead_letter_queues(client)
        invoked = []
        counts = replay(
            client, dlq, invoke=lambda arn, payload: invoked.append((arn, json.loads(payload)))
        )
        assert counts["replayed"] == 1
        assert invoked[0][0] == "arn:aws:lambda:us-east-1:1:function:cfg"
        assert invoked[0][1]["detail"]["object"]["key"] == "governance/x.json"


def test_a_message_that_cannot_be_replayed_is_kept():
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        url = client.create_queue(QueueName="x-dlq")["QueueUrl"]
        client.send_message(QueueUrl=url, MessageBody="not json")
        (dlq,) = find_dead_letter_queues(client)
        assert replay(client, dlq) == {"replayed": 0, "skipped": 0, "kept": 1}
        assert find_dead_letter_queues(client)[0].depth == 1


def _two_stacks(client):
    """Stack ``ours`` and another stack's DLQ in the same account, each with a message."""
    arns = {}
    for stack in ("ours", "theirs"):
        dlq = client.create_queue(QueueName=f"{stack}-ConvertDeadLetterQueue")["QueueUrl"]
        arns[stack] = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        client.create_queue(
            QueueName=f"{stack}-ConvertQueue",
            Attributes={
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": arns[stack], "maxReceiveCount": 5}
                )
            },
        )
        client.send_message(QueueUrl=dlq, MessageBody=_s3_event(f"{stack}.csv"))
    return arns


def test_only_the_stacks_own_queues_are_found_and_replayed_to_their_source():
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        arns = _two_stacks(client)
        (dlq,) = find_dead_letter_queues(client, only=[arns["ours"]])
        assert dlq.name == "ours-ConvertDeadLetterQueue"
        assert [s.rsplit("/", 1)[-1] for s in dlq.sources] == ["ours-ConvertQueue"]
        assert replay(client, dlq)["replayed"] == 1
        theirs = client.get_queue_url(QueueName="theirs-ConvertDeadLetterQueue")["QueueUrl"]
        depth = client.get_queue_attributes(
            QueueUrl=theirs, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
        assert depth == "1"


def test_the_cli_replays_the_deployments_queues_unless_told_to_take_all(tmp_path, capsys):
    from lakegov.cli import main

    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        arns = _two_stacks(client)
        outputs = tmp_path / "outputs.json"
        outputs.write_text(json.dumps({"DeadLetterQueueArns": arns["ours"]}))
        assert main(["redrive", "list", "--outputs", str(outputs), "--json"]) == 0
        listed = [q["queue"] for q in json.loads(capsys.readouterr().out)]
        assert listed == ["ours-ConvertDeadLetterQueue"]
        args = ["redrive", "list", "--outputs", str(outputs), "--all-queues", "--json"]
        assert main(args) == 0
        listed = [q["queue"] for q in json.loads(capsys.readouterr().out)]
        assert listed == ["ours-ConvertDeadLetterQueue", "theirs-ConvertDeadLetterQueue"]
        outputs.write_text(json.dumps({}))
        assert main(["redrive", "replay", "--outputs", str(outputs)]) != 0
        assert "--all-queues" in capsys.readouterr().err

"""Operators' tools on the embedded runtime: status timelines and DLQ redrive."""

import json

import pytest

from lakegov.cli import main

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("runtime")]


@pytest.fixture
def outputs_file(service, tmp_path):
    path = tmp_path / "outputs.json"
    service.write_outputs(path)
    return path


def _s3_event(service, key, version):
    return {
        "version": "0",
        "id": "redrive-test",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": service.account,
        "time": "2026-11-21T10:00:00Z",
        "region": service.region,
        "resources": [],
        "detail": {
            "bucket": {"name": service.outputs["RawBucketName"]},
            "object": {"key": key, "size": 20, "version-id": version},
        },
    }


def test_status_shows_a_files_timeline(service, outputs_file, capsys):
    key = "ops/status/orders.csv"
    service.client("s3").put_object(
        Bucket=service.outputs["RawBucketName"], Key=key, Body=b"id,total\n1,9.5\n"
    )
    service.wait_for_event("FileConverted", lambda d: d["key"] == key)
    assert main(["status", "file", key, "--outputs", str(outputs_file)]) == 0
    text = capsys.readouterr().out
    assert "[PROCESSED]" in text and "rows out        1" in text and "RECEIVED" in text
    assert main(["status", "file", key, "--outputs", str(outputs_file), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["items"][0]["status"] == "PROCESSED"
    assert main(["status", "file", "ops/status/never.csv", "--outputs", str(outputs_file)]) == 1


def test_a_dead_lettered_file_is_listed_replayed_once_and_converted_once(
    service, outputs_file, capsys
):
    out = service.outputs
    s3, sqs = service.client("s3"), service.client("sqs")
    key = "ops/redrive/late.csv"
    # Given a landed file whose message ended in the dead-letter queue (e.g. S3 was down)
    s3.put_bucket_notification_configuration(
        Bucket=out["RawBucketName"], NotificationConfiguration={}
    )
    version = s3.put_object(Bucket=out["RawBucketName"], Key=key, Body=b"id,total\n7,1.25\n")[
        "VersionId"
    ]
    s3.put_bucket_notification_configuration(
        Bucket=out["RawBucketName"], NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    dlq = sqs.get_queue_url(QueueName="e2e-ConvertDeadLetterQueue")["QueueUrl"]
    body = json.dumps(_s3_event(service, key, version))
    sqs.send_message(QueueUrl=dlq, MessageBody=body)

    # When the operator lists and replays it
    assert main(["redrive", "list", "--outputs", str(outputs_file), "--prefix", "e2e-Convert"]) == 0
    listing = capsys.readouterr().out
    assert "e2e-ConvertDeadLetterQueue: 1 message(s), replays to e2e-ConvertQueue" in listing
    assert f"Object Created {key}" in listing
    assert (
        main(
            [
                "redrive",
                "replay",
                "--outputs",
                str(outputs_file),
                "--queue",
                "e2e-ConvertDeadLetterQueue",
            ]
        )
        == 0
    )

    # Then the file is converted, and replaying the same message again changes nothing
    service.wait_for_event("FileConverted", lambda d: d["key"] == key)
    sqs.send_message(QueueUrl=dlq, MessageBody=body)
    assert (
        main(
            [
                "redrive",
                "replay",
                "--outputs",
                str(outputs_file),
                "--queue",
                "e2e-ConvertDeadLetterQueue",
            ]
        )
        == 0
    )
    service.wait_idle(timeout=60)
    assert (
        len(
            [
                e
                for e in service.events_of("FileConverted", bus=out["ServiceEventBusName"])
                if e["detail"]["key"] == key
            ]
        )
        == 1
    )
    assert (
        sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"
        ]["ApproximateNumberOfMessages"]
        == "0"
    )

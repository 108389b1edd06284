"""The lineage function on SQS batches of the lineage queue (moto behind get_app): a batch's
run events share one lake object per day and PutEvents calls, and a message that cannot be
recorded fails alone."""

from __future__ import annotations

import io
import json
from collections import Counter

import pyarrow.parquet as pq
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
FORMATTED = "lakegov-dev-formatted"
SERVICE_BUS = "lakegov-service"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:lakegov-LineageQueue"


@pytest.fixture
def lake(monkeypatch):
    """The formatted bucket and database, a service bus whose LineageRecorded land in a
    queue the test reads, and the environment the template gives the lineage function."""
    with mock_aws():
        import boto3

        boto3.client("s3", region_name=REGION).create_bucket(Bucket=FORMATTED)
        boto3.client("glue", region_name=REGION).create_database(
            DatabaseInput={"Name": "lakegov_dev_formatted"}
        )
        events = boto3.client("events", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        events.create_event_bus(Name=SERVICE_BUS)
        queued = events_of_bus(
            events, sqs, SERVICE_BUS, {"source": ["lakegov"], "detail-type": ["LineageRecorded"]}
        )
        for name, value in {
            "LAKEGOV_ENVIRONMENT": "dev",
            "LAKEGOV_ACCOUNT_ID": ACCOUNT,
            "RAW_BUCKET": "lakegov-dev-raw",
            "FORMATTED_BUCKET": FORMATTED,
            "CONFIG_BUCKET": "lakegov-dev-config",
            "SERVICE_BUS": SERVICE_BUS,
            "AUDIT_TABLE": "audit",
            "GLUE_DATABASE_PREFIX": "lakegov_dev_",
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(lakegov.app, "_apps", {})  # a cold container per test

        def announced() -> list[dict]:
            return [event["detail"] for event in queued()]

        yield announced


def _refresh(i: int, day: str = "2026-11-20") -> str:
    """The sample catalog DatasetRefreshed of ``events/`` (one landed file converted and
    registered: two run events), as the rule queues it, one table per i."""
    event = load_event("dataset_refreshed.json")
    detail = event["detail"]
    event["id"] = f"event-{i}"
    detail["table"] = f"mwaa_blog_t{i:02d}"
    detail["dataset"] = f"lakegov_dev_formatted_stg.mwaa_blog_t{i:02d}"
    detail["source_files"] = [f"s3://lakegov-dev-raw/mwaa/blog/partition_dt={day}/t{i:02d}.csv"]
    detail["partitions"] = [{"partition_dt": day}]
    detail["refreshed_at"] = f"{day}T10:15:00.000Z"
    return json.dumps(event)


def _lake_rows() -> dict[str, list[dict]]:
    """Each lineage_events object's rows, by key."""
    s3 = lakegov.app.get_app().client("s3")
    listing = s3.list_objects_v2(Bucket=FORMATTED, Prefix="lineage_events/")
    return {
        o["Key"]: pq.read_table(
            io.BytesIO(s3.get_object(Bucket=FORMATTED, Key=o["Key"])["Body"].read())
        ).to_pylist()
        for o in listing.get("Contents", [])
    }


def _put_object_calls() -> list[str]:
    """The key of each PutObject call the function's S3 client makes from now on."""
    keys: list[str] = []
    lakegov.app.get_app().client("s3").meta.events.register(
        "provide-client-params.s3.PutObject", lambda params, **_: keys.append(params["Key"])
    )
    return keys


def test_a_batch_s_run_events_share_one_lake_object_per_day_and_put_events_calls(
    lake, lambda_context
):
    from handlers.lineage import handler

    # Given five refreshes queued, three of one day and two of the next
    bodies = [_refresh(i, "2026-11-20" if i < 3 else "2026-11-21") for i in range(5)]
    calls = put_events_calls(lakegov.app.get_app().clients("events"))
    # When the function receives them as one batch
    response = handler(sqs_batch(QUEUE_ARN, *bodies), lambda_context)
    # Then nothing is retried; the ten run events are in one object per day
    assert response == {"batchItemFailures": []}
    rows = _lake_rows()
    assert sorted(k.split("/")[1] for k in rows) == ["run_date=2026-11-20", "run_date=2026-11-21"]
    assert sorted(len(r) for r in rows.values()) == [4, 6]
    # and announced in one PutEvents call, each naming its day's object and its refresh
    assert calls == [10]
    announced = lake()
    assert len(announced) == 10
    for detail in announced:
        assert detail["lake_key"] in rows
        assert detail["lake_key"].split("/")[1] == f"run_date={detail['event_time'][:10]}"
        assert detail["dataset"] == f"lakegov_dev_formatted_stg.{detail['job'].split('.')[1]}"


def test_ten_refreshes_take_one_object_and_two_put_events_calls_instead_of_ten_each(
    lake, lambda_context
):
    from handlers.lineage import handler

    bodies = [_refresh(i) for i in range(10)]
    puts = _put_object_calls()
    calls = put_events_calls(lakegov.app.get_app().clients("events"))
    # Given each refresh handled alone (as when each event was its own invocation)
    for body in bodies:
        assert handler(sqs_batch(QUEUE_ARN, body), lambda_context) == {"batchItemFailures": []}
    assert (len(puts), calls) == (10, [2] * 10)
    # When the same ten arrive as one batch
    puts.clear(), calls.clear()
    assert handler(sqs_batch(QUEUE_ARN, *bodies), lambda_context) == {"batchItemFailures": []}
    # Then their twenty run events take one lake object and two PutEvents calls
    assert (len(puts), calls) == (1, [10, 10])
    assert len(_lake_rows()[puts[0]]) == 20


def test_a_message_that_is_no_event_lineage_records_is_dropped_and_the_others_recorded(
    lake, lambda_context, caplog
):
    from handlers.lineage import handler

    # Given a batch with a body that is no event and an event lineage does not record
    converted = {**json.loads(_refresh(9)), "detail-type": "FileConverted"}
    bodies = [_refresh(0), "not an event", json.dumps(converted), _refresh(1)]
    # When the function receives it
    response = handler(sqs_batch(QUEUE_ARN, *bodies), lambda_context)
    # Then nothing is retried (no number of retries would change those two)
    assert response == {"batchItemFailures": []}
    # the log says which messages were dropped and why
    dropped = {r.message_id: r.reason for r in caplog.records if hasattr(r, "reason")}
    assert "not an EventBridge event" in dropped["msg-1"]
    assert "detail-type='FileConverted'" in dropped["msg-2"]
    # and the two refreshes are recorded and announced
    (rows,) = _lake_rows().values()
    assert sorted(r["job_name"] for r in rows) == [
        "convert.mwaa_blog_t00",
        "convert.mwaa_blog_t01",
        "register.mwaa_blog_t00",
        "register.mwaa_blog_t01",
    ]
    assert len(lake()) == 4


def test_a_refused_announcement_fails_its_message_alone(lake, lambda_context):
    from handlers.lineage import handler

    # Given a service bus that refuses the registration of t02 on every attempt
    publisher = lakegov.app.get_app().publisher
    publisher.events_client = RefusingEvents(
        publisher.events_client, marker='"job":"register.mwaa_blog_t02"', times=publisher.attempts
    )
    bodies = [_refresh(i) for i in range(4)]
    # When a batch of four is recorded
    response = handler(sqs_batch(QUEUE_ARN, *bodies), lambda_context)
    # Then that message alone is reported, for SQS to deliver again
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-2"}]}
    # the other announcements went once (only the refused entry was resent)
    assert publisher.events_client.calls == [8, 1, 1]
    assert sorted(d["job"] for d in lake()) == sorted(
        [f"convert.mwaa_blog_t{i:02d}" for i in range(4)]
        + [f"register.mwaa_blog_t{i:02d}" for i in (0, 1, 3)]
    )
    # When SQS delivers it again, alone
    assert handler(sqs_batch(QUEUE_ARN, bodies[2]), lambda_context) == {"batchItemFailures": []}
    # Then it is announced, and the lake holds every run event of the four refreshes
    assert sorted(d["job"] for d in lake()) == ["convert.mwaa_blog_t02", "register.mwaa_blog_t02"]
    kept = Counter((r["job_name"], r["run_id"]) for rows in _lake_rows().values() for r in rows)
    assert sorted(job for job, _ in kept) == sorted(
        f"{step}.mwaa_blog_t{i:02d}" for step in ("convert", "register") for i in range(4)
    )


def test_an_announcement_that_breaks_its_contract_fails_its_message_before_any_row(
    lake, lambda_context, monkeypatch, caplog
):
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    from handlers.lineage import handler
    from lakegov.events import EventContractError
    from lakegov.lineage import service

    # Given announcements of t01 that can never be published (their detail breaks the
    # LineageRecorded contract on every delivery)
    check = service.validate_detail

    def refusing(detail_type: str, detail: dict) -> None:
        if detail_type == "LineageRecorded" and detail["dataset"].endswith("mwaa_blog_t01"):
            raise EventContractError("LineageRecorded detail breaks its contract")
        check(detail_type, detail)

    monkeypatch.setattr(service, "validate_detail", refusing)
    bodies = [_refresh(i) for i in range(3)]
    # When the batch is recorded, and that message delivered again alone
    response = handler(sqs_batch(QUEUE_ARN, *bodies), lambda_context)
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-1"}]}
    # the log says which message, and which lakegov event it carries
    (failure,) = [r for r in caplog.records if r.getMessage().startswith("lineage not recorded")]
    assert (failure.message_id, failure.event_id, failure.detail_type) == (
        "msg-1",
        "event-1",
        "DatasetRefreshed",
    )
    with pytest.raises(BatchProcessingError):  # alone, it fails its whole batch
        handler(sqs_batch(QUEUE_ARN, bodies[1]), lambda_context)
    # Then the lake holds the others' run events, and never one of t01
    jobs = sorted(r["job_name"] for rows in _lake_rows().values() for r in rows)
    assert jobs == sorted(
        f"{s}.mwaa_blog_t{i:02d}" for s in ("convert", "register") for i in (0, 2)
    )
    assert sorted(d["job"] for d in lake()) == jobs


def test_an_event_handed_over_directly_is_recorded_alone(lake, lambda_context):
    """The rule of a stack deployed before lineage read a queue invokes the function with
    the event itself while the stack is updated: it is recorded, not lost."""
    from handlers.lineage import handler

    outcome = handler(json.loads(_refresh(5)), lambda_context)
    assert outcome["status"] == "RECORDED"
    assert sorted(outcome["jobs"]) == ["convert.mwaa_blog_t05", "register.mwaa_blog_t05"]
    assert sorted(d["job"] for d in lake()) == sorted(outcome["jobs"])
    assert len(_lake_rows()) == 1
    # and one that cannot be recorded fails the invocation (Lambda retries it)
    publisher = lakegov.app.get_app().publisher
    publisher.events_client = RefusingEvents(
        publisher.events_client, marker='"job":"register.mwaa_blog_t06"', times=99
    )
    with pytest.raises(Exception, match="PutEvents failed"):
        handler(json.loads(_refresh(6)), lambda_context)

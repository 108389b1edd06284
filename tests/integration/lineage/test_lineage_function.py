"""The lineage function on moto: each lakegov event's OpenLineage events are kept in the
lake (one object per batch and day; a redelivery in the same batch rewrites it), announced
as LineageRecorded, and posted to Amazon DataZone only where a domain is configured (moto has no DataZone: botocore's Stubber
checks the call against the service model)."""

from __future__ import annotations

import io
import json
from dataclasses import replace

import boto3
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber
from moto import mock_aws
from tests.conftest import EVENTS_DIR, RefusingEvents, load_event

from lakegov.app import App
from lakegov.errors import RetryableError
from lakegov.events import EventPublisher
from lakegov.layout import LINEAGE_EVENTS_TABLE
from lakegov.lineage.openlineage import Namespaces, facet, run_event
from lakegov.lineage.records import LakeRecords
from lakegov.lineage.service import (
    MAX_DATASETS_IN_DETAIL,
    MAX_DATAZONE_EVENT_BYTES,
    DataZoneLineage,
    LineageContext,
    record_lineage,
    record_messages,
)
from lakegov.lineage.wiring import EMBEDDED_NO_DATAZONE, lineage_context
from lakegov.settings import Settings

REGION = "us-east-1"
BUCKET = "lakegov-dev-formatted"
DB = "lakegov_dev_formatted"


@pytest.fixture
def ctx():
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        s3.create_bucket(Bucket="lakegov-config")
        glue = boto3.client("glue", region_name=REGION)
        glue.create_database(DatabaseInput={"Name": DB})
        events = boto3.client("events", region_name=REGION)
        events.create_event_bus(Name="svc")
        yield LineageContext(
            records=LakeRecords(s3, glue, BUCKET, DB),
            publisher=EventPublisher(events, ("svc",), record=True),
            namespaces=Namespaces(REGION, "123456789012"),
            formatted_bucket=BUCKET,
            s3=s3,
            config_bucket="lakegov-config",
            glue_prefix="lakegov_dev_",
        )


def refreshed() -> dict:
    """A catalog DatasetRefreshed: one landed file converted and registered."""
    return json.loads((EVENTS_DIR / "dataset_refreshed.json").read_text())["detail"]


def on_lakegov_event(detail_type: str, detail: dict, ctx: LineageContext) -> dict:
    """One lakegov event as the rule queues it (the body of one message of the lineage
    queue), recorded: what it recorded; raises what failed its message."""
    body = json.dumps(
        {**load_event("dataset_refreshed.json"), "detail-type": detail_type, "detail": detail}
    )
    (outcome,) = record_messages([("msg-0", body)], ctx).values()
    if isinstance(outcome, Exception):
        raise outcome
    assert outcome.status == "RECORDED", outcome.reason
    return {"recorded": len(outcome.jobs), "jobs": list(outcome.jobs)}


def lake_events(ctx: LineageContext) -> list[dict]:
    listing = ctx.s3.list_objects_v2(Bucket=BUCKET, Prefix="lineage_events/")
    out = []
    for o in listing.get("Contents", []):
        body = ctx.s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
        out += pq.read_table(io.BytesIO(body)).to_pylist()
    return out


def test_a_refresh_is_kept_in_the_lake_once_and_announced(ctx):
    # When the same catalog DatasetRefreshed is handled twice (a redelivery)
    first = on_lakegov_event("DatasetRefreshed", refreshed(), ctx)
    on_lakegov_event("DatasetRefreshed", refreshed(), ctx)
    # Then the lake holds its conversion and its registration once each
    assert first["jobs"] == ["convert.mwaa_blog_cards", "register.mwaa_blog_cards"]
    rows = lake_events(ctx)
    assert sorted(r["job_name"] for r in rows) == first["jobs"]
    assert {json.loads(r["event"])["eventType"] for r in rows} == {"COMPLETE"}
    table = ctx.records.glue.get_table(DatabaseName=DB, Name="lineage_events")["Table"]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["run_date"]
    # and each delivery is announced, saying DataZone was not asked (no domain)
    announced = [e.detail for e in ctx.publisher.published if e.detail_type == "LineageRecorded"]
    assert len(announced) == 4
    assert announced[0]["datazone"] == "skipped: not configured"
    assert announced[0]["lake_key"].startswith("lineage_events/run_date=2026-11-20/")
    # named as the refresh names its dataset, so domains' subscriptions can select it
    assert {a["dataset"] for a in announced} == {refreshed()["dataset"]}


def test_a_refresh_s_run_events_share_one_lake_object_and_one_put_events_call(ctx):
    events = RefusingEvents(ctx.publisher.events_client)
    counted = replace(ctx, publisher=EventPublisher(events, ("svc",), record=True))
    on_lakegov_event("DatasetRefreshed", refreshed(), counted)
    listing = ctx.s3.list_objects_v2(Bucket=BUCKET, Prefix="lineage_events/")["Contents"]
    assert len(listing) == 1 and len(lake_events(ctx)) == 2
    assert events.calls == [2]
    announced = [e.detail for e in counted.publisher.published]
    assert {a["lake_key"] for a in announced} == {listing[0]["Key"]}


def test_an_announcement_that_keeps_failing_fails_the_event_and_its_redelivery_adds_no_row(ctx):
    # Given PutEvents failing the registration's entry on every attempt
    events = RefusingEvents(ctx.publisher.events_client, '"job":"register.mwaa_blog_cards"', 3)
    flaky = replace(ctx, publisher=EventPublisher(events, ("svc",), record=True, attempts=3))
    with pytest.raises(RetryableError):
        on_lakegov_event("DatasetRefreshed", refreshed(), flaky)
    # the conversion's went once, the registration's was tried three times
    assert events.calls == [2, 1, 1]
    assert [e.detail["job"] for e in flaky.publisher.published] == ["convert.mwaa_blog_cards"]
    # When the event is delivered again, it is recorded: the same object, no second row
    on_lakegov_event("DatasetRefreshed", refreshed(), flaky)
    assert sorted(r["job_name"] for r in lake_events(ctx)) == [
        "convert.mwaa_blog_cards",
        "register.mwaa_blog_cards",
    ]
    assert [e.detail["job"] for e in flaky.publisher.published][-2:] == [
        "convert.mwaa_blog_cards",
        "register.mwaa_blog_cards",
    ]


def test_events_without_lineage_record_nothing(ctx):
    # a product's output refresh is told by its run's model events, a conversion by the refresh
    product_refresh = {
        "dataset": "x",
        "database": DB,
        "table": "t",
        "mode": "product",
        "refreshed_at": "2026-11-20T10:00:00Z",
    }
    assert on_lakegov_event("DatasetRefreshed", product_refresh, ctx)["recorded"] == 0
    assert lake_events(ctx) == []


def test_with_a_domain_each_event_is_posted_to_datazone(ctx):
    client = boto3.client("datazone", region_name=REGION)
    stubber = Stubber(client)
    for _ in range(2):  # the conversion, the registration
        stubber.add_response(
            "post_lineage_event",
            {},
            {"domainIdentifier": "dzd_abc123", "event": ANY, "clientToken": ANY},
        )
    posting = replace(ctx, datazone=DataZoneLineage(client, "dzd_abc123"))
    with stubber:
        on_lakegov_event("DatasetRefreshed", refreshed(), posting)
    stubber.assert_no_pending_responses()
    announced = [e.detail for e in ctx.publisher.published if e.detail_type == "LineageRecorded"]
    assert [a["datazone"] for a in announced] == ["posted", "posted"]


def test_a_datazone_refusal_fails_the_event_so_it_is_retried_or_dead_lettered(ctx):
    client = boto3.client("datazone", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_client_error("post_lineage_event", "AccessDeniedException", http_status_code=403)
    posting = replace(ctx, datazone=DataZoneLineage(client, "dzd_abc123"))
    with stubber, pytest.raises(Exception, match="AccessDenied"):
        on_lakegov_event("DatasetRefreshed", refreshed(), posting)


def settings(**env: str) -> Settings:
    base = {
        "LAKEGOV_ENVIRONMENT": "dev",
        "AWS_REGION": REGION,
        "RAW_BUCKET": "raw",
        "FORMATTED_BUCKET": BUCKET,
        "CONFIG_BUCKET": "config",
        "SERVICE_BUS": "svc",
        "AUDIT_TABLE": "audit",
    }
    return Settings.from_env({**base, **env})


def test_the_embedded_runtime_skips_datazone_and_says_why():
    with mock_aws():
        local = lineage_context(
            App.from_settings(settings(DATAZONE_DOMAIN_ID="dzd_abc123", LAKEGOV_LOCAL="1"))
        )
        deployed = lineage_context(App.from_settings(settings(DATAZONE_DOMAIN_ID="dzd_abc123")))
    assert local.datazone is None and local.datazone_skipped == EMBEDDED_NO_DATAZONE
    assert deployed.datazone is not None and deployed.datazone.domain_id == "dzd_abc123"


def test_a_warm_function_registers_a_day_of_its_tables_once_across_invocations():
    # Given one container's App (the lineage and products functions take their records from it)
    with mock_aws():
        app = App.from_settings(settings())
        app.client("s3").create_bucket(Bucket=BUCKET)
        app.client("glue").create_database(
            DatabaseInput={"Name": app.settings.database("formatted")}
        )
        glue_calls: list[str] = []
        app.client("glue").meta.events.register(
            "before-call.glue", lambda model, **_: glue_calls.append(model.name)
        )
        row = {"event_time": "2026-11-30T10:00:00Z", "job_name": "j", "run_id": "r"}
        # When two invocations each record an event of the same day
        for run_id in ("r1", "r2"):
            records = lineage_context(app).records
            records.write(LINEAGE_EVENTS_TABLE, "2026-11-30T10:00:00Z", (run_id, "COMPLETE"), [row])
        # Then the table and the day's partition were looked up and registered by the first
        # only (the table it created is not read back)
        assert glue_calls == ["GetTable", "CreateTable", "BatchCreatePartition"]
        table = app.client("glue").get_partitions(
            DatabaseName=app.settings.database("formatted"), TableName=LINEAGE_EVENTS_TABLE
        )
        assert [p["Values"] for p in table["Partitions"]] == [["2026-11-30"]]


def wide_model_run(inputs: int, columns: int = 0) -> dict:
    """A dbt model's run event reading ``inputs`` tables, writing one with ``columns`` columns."""
    ns = Namespaces(REGION, "123456789012")
    fields = [{"name": f"column_{i:04d}", "type": "string"} for i in range(columns)]
    schema = {"schema": facet("schema", fields=fields)} if fields else {}
    return run_event(
        event_type="COMPLETE",
        event_time="2026-11-30T10:00:00Z",
        job="product.wide.union_all",
        run_id="0192f0a4-5c8e-7a51-9c1d-3b2f4e6a7b8c",
        inputs=[ns.table("lakegov_dev_formatted_stg", f"source_{i:05d}") for i in range(inputs)],
        outputs=[ns.table("lakegov_dev_formatted", "union_all", **schema)],
        job_type="MODEL",
    )


def test_a_model_reading_thousands_of_tables_is_announced_within_eventbridge_s_entry_size(ctx):
    # Given a model that read 3000 tables (its whole event is well over 256 KB)
    event = wide_model_run(3000)
    assert len(json.dumps(event)) > 256 * 1024
    # When it is recorded
    detail = record_lineage(event, ctx)
    # Then the lake keeps every input, and LineageRecorded names the first 200 and the total
    (row,) = lake_events(ctx)
    assert len(json.loads(row["inputs"])) == 3000
    assert len(detail["inputs"]) == MAX_DATASETS_IN_DETAIL and detail["inputs_total"] == 3000
    assert "outputs_total" not in detail
    (announced,) = [e for e in ctx.publisher.published if e.detail_type == "LineageRecorded"]
    assert len(announced.entry("svc")["Detail"]) < 256 * 1024


def test_an_event_over_datazone_s_size_is_posted_without_facets_or_skipped_saying_why():
    client = boto3.client("datazone", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_response(
        "post_lineage_event",
        {},
        {"domainIdentifier": "dzd_abc123", "event": ANY, "clientToken": ANY},
    )
    datazone = DataZoneLineage(client, "dzd_abc123")
    # Given a model whose output's schema facet (8000 columns) takes it over 300000 bytes
    wide_schema = wide_model_run(2, columns=8000)
    assert len(json.dumps(wide_schema, separators=(",", ":"))) > MAX_DATAZONE_EVENT_BYTES
    with stubber:
        # Then it is posted (once) without the dataset facets, and the answer says so
        assert datazone.post(wide_schema).startswith("posted without dataset facets")
        stubber.assert_no_pending_responses()
        # and one whose dataset names alone are over the limit is not posted (the stubber
        # has no second response): the answer says why
        assert datazone.post(wide_model_run(4000)).startswith("skipped: ")


class FailingDayRecords:
    """The lake's records, except that writing an object of ``day`` fails (as S3 does
    once the client's own retries are spent)."""

    def __init__(self, records: LakeRecords, day: str) -> None:
        self.records, self.day = records, day

    def write(self, table, timestamp, names, rows):
        if str(timestamp).startswith(self.day):
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "later"}}, "PutObject")
        return self.records.write(table, timestamp, names, rows)


def queued(i: int, day: str) -> tuple[str, str]:
    """Message ``msg-<i>`` of the lineage queue: a refresh of its own table on ``day``."""
    event = load_event("dataset_refreshed.json")
    event["detail"] = {
        **event["detail"],
        "table": f"t{i}",
        "source_files": [f"s3://raw/p/partition_dt={day}/t{i}.csv"],
        "refreshed_at": f"{day}T10:00:00Z",
    }
    return f"msg-{i}", json.dumps(event)


def test_a_lake_object_not_written_fails_the_messages_of_its_day_alone(ctx):
    # Given a batch of refreshes of two days, and S3 failing to take the second day's object
    messages = [queued(0, "2026-11-20"), queued(1, "2026-11-21"), queued(2, "2026-11-20")]
    failing = replace(ctx, records=FailingDayRecords(ctx.records, "2026-11-21"))
    # When it is recorded
    outcomes = record_messages(messages, failing)
    # Then the message of that day fails (for SQS to deliver again), and nothing of it is
    # announced; the other day's are recorded and announced
    assert isinstance(outcomes["msg-1"], ClientError)
    assert [outcomes["msg-0"].status, outcomes["msg-2"].status] == ["RECORDED", "RECORDED"]
    assert sorted(r["job_name"] for r in lake_events(ctx)) == [
        "convert.t0",
        "convert.t2",
        "register.t0",
        "register.t2",
    ]
    assert sorted(e.detail["job"] for e in ctx.publisher.published) == [
        "convert.t0",
        "convert.t2",
        "register.t0",
        "register.t2",
    ]


def test_a_datazone_refusal_fails_its_message_alone_and_leaves_nothing_of_it(ctx):
    # Given DataZone accepting the first message's two events, then refusing
    client = boto3.client("datazone", region_name=REGION)
    stubber = Stubber(client)
    for _ in range(2):
        stubber.add_response(
            "post_lineage_event",
            {},
            {"domainIdentifier": "dzd_abc123", "event": ANY, "clientToken": ANY},
        )
    stubber.add_client_error("post_lineage_event", "ThrottlingException", http_status_code=400)
    posting = replace(ctx, datazone=DataZoneLineage(client, "dzd_abc123"))
    # When a batch of two refreshes is recorded
    with stubber:
        outcomes = record_messages([queued(0, "2026-11-20"), queued(1, "2026-11-20")], posting)
    # Then the second fails, retryable, with nothing of it in the lake or on the bus
    assert isinstance(outcomes["msg-1"], RetryableError)
    assert outcomes["msg-0"].jobs == ("convert.t0", "register.t0")
    assert sorted(r["job_name"] for r in lake_events(ctx)) == ["convert.t0", "register.t0"]
    assert [e.detail["datazone"] for e in ctx.publisher.published] == ["posted", "posted"]

"""The convert handler on moto: SQS batch in, Parquet, quarantine, audit and events out."""

from __future__ import annotations

import io
import json

import boto3
import pyarrow.parquet as pq
import pytest
from moto import mock_aws
from tests.conftest import RefusingEvents, create_audit_table, load_event

import lakegov.app
from lakegov.audit import AuditStore
from lakegov.events import validate_detail

ENV = {
    "LAKEGOV_ENVIRONMENT": "test",
    "RAW_BUCKET": "raw",
    "FORMATTED_BUCKET": "formatted",
    "CONFIG_BUCKET": "configs",
    "SERVICE_BUS": "svc",
    "AUDIT_TABLE": "audit",
    "LAKEGOV_ACCOUNT_ID": "123456789012",
    "GLUE_DATABASE_PREFIX": "lakegov_test_",
}


class Harness:
    def __init__(self):
        self.s3 = boto3.client("s3", region_name="us-east-1")
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        events = boto3.client("events", region_name="us-east-1")
        for bucket in ("raw", "formatted", "configs"):
            self.s3.create_bucket(Bucket=bucket)
        self.s3.put_bucket_versioning(Bucket="raw", VersioningConfiguration={"Status": "Enabled"})
        events.create_event_bus(Name="svc")
        self.observed = self.sqs.create_queue(QueueName="observed")["QueueUrl"]
        events.put_rule(
            Name="all", EventBusName="svc", EventPattern=json.dumps({"source": ["lakegov"]})
        )
        events.put_targets(
            Rule="all",
            EventBusName="svc",
            Targets=[{"Id": "q", "Arn": "arn:aws:sqs:us-east-1:123456789012:observed"}],
        )
        create_audit_table(boto3.client("dynamodb", region_name="us-east-1"))

    def land(self, key: str, body: bytes) -> dict:
        response = self.s3.put_object(Bucket="raw", Key=key, Body=body)
        event = load_event("s3_object_created.json")
        event["detail"]["bucket"]["name"] = "raw"
        event["detail"]["object"].update(
            {
                "key": key,
                "size": len(body),
                "etag": response["ETag"].strip('"'),
                "version-id": response["VersionId"],
            }
        )
        return event

    def batch(self, *events: dict) -> dict:
        template = load_event("sqs_landed_files.json")["Records"][0]
        records = [
            {**template, "messageId": f"m{i}", "body": json.dumps(e)} for i, e in enumerate(events)
        ]
        return {"Records": records}

    def published(self) -> list[dict]:
        out = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.observed, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                return out
            for m in messages:
                out.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.observed, ReceiptHandle=m["ReceiptHandle"])


@pytest.fixture
def harness(monkeypatch):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        import handlers.convert as convert_handler

        lakegov.app._apps.clear()  # a cold container: the App and its converter built anew
        yield Harness(), convert_handler


def test_a_batch_converts_good_files_and_quarantines_a_bad_one_without_failing_it(
    harness, lambda_context
):
    h, handler = harness
    good = h.land(
        "sales/emea/order_dt=2026-11-20/orders.csv", b'id;amount;note\n1;10.5;"a;b"\n2;7;x\n'
    )
    bad = h.land("sales/emea/order_dt=2026-11-20/broken.csv", b"id,amount\n1,2\n3\n")
    response = handler.handler(h.batch(good, bad), lambda_context)
    assert response["batchItemFailures"] == []

    events = {e["detail-type"]: e["detail"] for e in h.published()}
    for detail_type, detail in events.items():
        validate_detail(detail_type, detail)
    converted = events["FileConverted"]
    assert converted["table"] == "sales_emea_orders" and converted["rows"] == 2
    assert converted["partition_values"] == {"order_dt": "2026-11-20"}
    (key,) = converted["output_keys"]
    assert key.startswith("formatted_stg/sales_emea_orders/order_dt=2026-11-20/orders-")
    table = pq.read_table(io.BytesIO(h.s3.get_object(Bucket="formatted", Key=key)["Body"].read()))
    assert table.column("note").to_pylist() == ["a;b", "x"]

    rejected = events["FileRejected"]
    assert rejected["reason_code"] == "ragged_rows" and rejected["bad_lines"] == [3]
    quarantined = h.s3.head_object(Bucket="raw", Key=rejected["quarantine_key"])
    assert quarantined["Metadata"]["lakegov-reason-code"] == "ragged_rows"


def test_a_duplicate_delivery_converts_once(harness, lambda_context):
    h, handler = harness
    event = h.land("crm/contacts.json", b'{"id": 1, "name": "Ana"}\n{"id": 2, "name": "Bo"}\n')
    handler.handler(h.batch(event), lambda_context)
    handler.handler(h.batch(event, event), lambda_context)
    published = [e for e in h.published() if e["detail-type"] == "FileConverted"]
    assert len(published) == 1
    objects = h.s3.list_objects_v2(Bucket="formatted", Prefix="formatted_stg/crm_contacts/")[
        "Contents"
    ]
    assert len(objects) == 1


def test_a_transient_failure_fails_only_its_record_and_leaves_no_output(
    harness, lambda_context, monkeypatch
):
    h, handler = harness
    ok = h.land("a/one.csv", b"x\n1\n")
    flaky = h.land("a/two.csv", b"x\n2\n")
    converter = handler.get_app().converter
    real_upload = converter.s3.put_object  # a small file's output: one PutObject

    def failing_upload(*args, **kwargs):
        if "two" in kwargs["Key"]:
            raise ConnectionError("S3 went away mid-write")
        return real_upload(*args, **kwargs)

    monkeypatch.setattr(converter.s3, "put_object", failing_upload)
    response = handler.handler(h.batch(ok, flaky), lambda_context)
    assert response["batchItemFailures"] == [{"itemIdentifier": "m1"}]
    assert "Contents" not in h.s3.list_objects_v2(Bucket="formatted", Prefix="formatted_stg/a_two/")
    # the retry after the fault converts it, exactly once
    monkeypatch.setattr(converter.s3, "put_object", real_upload)
    assert handler.handler(h.batch(flaky), lambda_context)["batchItemFailures"] == []
    converted = [e["detail"]["key"] for e in h.published() if e["detail-type"] == "FileConverted"]
    assert sorted(converted) == ["a/one.csv", "a/two.csv"]


def test_a_dataset_document_overrides_the_table_name_and_bad_rows_policy(harness, lambda_context):
    h, handler = harness
    h.s3.put_object(
        Bucket="configs",
        Key="datasets/sales.json",
        Body=json.dumps(
            {
                "match": {"prefix": "sales/"},
                "table_name": "sales_orders",
                "bad_rows": "exceptions",
                "max_bad_row_fraction": 0.5,
            }
        ).encode(),
    )
    event = h.land("sales/q4/orders.csv", b"id,amount\n1,2\n3\n4,5\n")
    assert handler.handler(h.batch(event), lambda_context)["batchItemFailures"] == []
    (converted,) = [e["detail"] for e in h.published() if e["detail-type"] == "FileConverted"]
    assert (
        converted["table"] == "sales_orders"
        and converted["rows"] == 2
        and converted["bad_rows"] == 1
    )
    lines = (
        h.s3.get_object(Bucket="formatted", Key=converted["exceptions_key"])["Body"]
        .read()
        .decode()
        .splitlines()
    )
    assert json.loads(lines[0])["line"] == 3


def test_by_default_a_few_bad_rows_are_set_aside_and_the_rest_loads(harness, lambda_context):
    # Given no dataset document and a file with 1 ragged row in 40 (2.5%, under 5%)
    h, handler = harness
    rows = b"".join(b"%d,%d\n" % (i, i) for i in range(39))
    event = h.land("shop/orders.csv", b"id,amount\n" + rows[:20] + b"oops\n" + rows[20:])
    # When it is converted
    assert handler.handler(h.batch(event), lambda_context)["batchItemFailures"] == []
    # Then the good rows load and FileConverted says how many rows were set aside
    (converted,) = [e["detail"] for e in h.published() if e["detail-type"] == "FileConverted"]
    assert converted["rows"] == 39 and converted["rows_in"] == 40 and converted["bad_rows"] == 1
    body = h.s3.get_object(Bucket="formatted", Key=converted["exceptions_key"])["Body"].read()
    (record,) = [json.loads(line) for line in body.decode().splitlines()]
    assert record["reason_code"] == "ragged_rows" and record["raw"] == "oops"


def test_by_default_too_many_bad_rows_reject_the_file(harness, lambda_context):
    # Given 3 bad rows in 40 (7.5%, over the default 5%)
    h, handler = harness
    body = b"id,amount\n" + b"".join(
        b"%d\n" % i if i % 13 == 0 else b"%d,%d\n" % (i, i) for i in range(1, 41)
    )
    event = h.land("shop/orders.csv", body)
    assert handler.handler(h.batch(event), lambda_context)["batchItemFailures"] == []
    (rejected,) = [e["detail"] for e in h.published() if e["detail-type"] == "FileRejected"]
    assert rejected["reason_code"] == "ragged_rows"
    assert "3 of 40 rows are bad" in rejected["reason"]
    assert not [e for e in h.published() if e["detail-type"] == "FileConverted"]


def test_a_new_version_of_a_key_replaces_the_previous_output(harness, lambda_context):
    h, handler = harness
    key = "shop/orders/order_dt=2026-11-20/orders.csv"
    first = h.land(key, b"id,total\n1,10\n2,20\n3,30\n")
    handler.handler(h.batch(first), lambda_context)
    second = h.land(key, b"id,total\n1,10\n2,25\n3,30\n")  # the corrected export
    handler.handler(h.batch(second), lambda_context)
    prefix = "formatted_stg/shop_orders_orders/order_dt=2026-11-20/"
    keys = [o["Key"] for o in h.s3.list_objects_v2(Bucket="formatted", Prefix=prefix)["Contents"]]
    assert len(keys) == 1, keys
    table = pq.read_table(
        io.BytesIO(h.s3.get_object(Bucket="formatted", Key=keys[0])["Body"].read())
    )
    assert table.column("total").to_pylist() == [10, 25, 30]


def test_an_older_version_converted_late_does_not_win(harness, lambda_context):
    h, handler = harness
    key = "shop/late/orders.csv"
    old = h.land(key, b"id\n1\n")
    new = h.land(key, b"id\n2\n")
    old["detail"]["object"]["sequencer"] = "00A1"
    new["detail"]["object"]["sequencer"] = "00B2"
    handler.handler(h.batch(new), lambda_context)
    handler.handler(h.batch(old), lambda_context)  # out of order: the older one arrives last
    keys = [
        o["Key"]
        for o in h.s3.list_objects_v2(Bucket="formatted", Prefix="formatted_stg/shop_late_orders/")[
            "Contents"
        ]
    ]
    assert len(keys) == 1
    table = pq.read_table(
        io.BytesIO(h.s3.get_object(Bucket="formatted", Key=keys[0])["Body"].read())
    )
    assert table.column("id").to_pylist() == [2]


def test_deleting_a_landed_file_removes_its_output(harness, lambda_context):
    h, handler = harness
    key = "crm/leads/leads.csv"
    created = h.land(key, b"id\n1\n")
    handler.handler(h.batch(created), lambda_context)
    assert (
        h.s3.list_objects_v2(Bucket="formatted", Prefix="formatted_stg/crm_leads_leads/")[
            "KeyCount"
        ]
        == 1
    )
    h.s3.delete_object(Bucket="raw", Key=key)
    deleted = json.loads(json.dumps(created))
    deleted["detail-type"] = "Object Deleted"
    deleted["detail"]["deletion-type"] = "Delete Marker Created"
    assert handler.handler(h.batch(deleted), lambda_context)["batchItemFailures"] == []
    assert (
        h.s3.list_objects_v2(Bucket="formatted", Prefix="formatted_stg/crm_leads_leads/")[
            "KeyCount"
        ]
        == 0
    )
    # a repeated delete event is harmless
    assert handler.handler(h.batch(deleted), lambda_context)["batchItemFailures"] == []


def test_a_real_export_loads_with_its_bad_row_set_aside_and_its_preamble_recorded(
    harness, lambda_context
):
    # Given an ERP export: a preamble, ';' and CRLF, one row with a field too many
    h, handler = harness
    rows = [f"{i};name {i};{i}.5" for i in range(1, 41)]
    rows[29] += ";surplus"  # physical line 33
    body = "Report generated 2026-11-20 by ERP\r\n\r\nid;name;amount\r\n" + "\r\n".join(rows)
    event = h.land("erp/exports/orders.csv", (body + "\r\n").encode())
    # When it lands with no dataset document
    assert handler.handler(h.batch(event), lambda_context)["batchItemFailures"] == []
    # Then the good rows load, FileConverted counts the one set aside, the exceptions
    # file names its physical line, and the audit says what was skipped
    events = {e["detail-type"]: e["detail"] for e in h.published()}
    assert "FileRejected" not in events
    converted = events["FileConverted"]
    validate_detail("FileConverted", converted)
    assert converted["rows"] == 39 and converted["bad_rows"] == 1
    assert converted["columns"][0]["name"] == "id"
    (exception,) = [
        json.loads(line)
        for line in h.s3.get_object(Bucket="formatted", Key=converted["exceptions_key"])["Body"]
        .read()
        .decode()
        .splitlines()
    ]
    assert exception["line"] == 33 and exception["reason_code"] == "ragged_rows"
    audit = AuditStore("audit", boto3.client("dynamodb", region_name="us-east-1"))
    item = audit.get("file", "s3://raw/erp/exports/orders.csv", converted["version_id"])
    assert item is not None and item["status"] == "PROCESSED"
    assert "2 lines skipped" in item["history"][-1]["note"]


def test_the_stored_schema_of_a_dataset_with_dates_and_decimals_is_enforced(
    harness, lambda_context
):
    # Given a dataset whose first file set date, timestamp, exact-integer and nested columns
    h, handler = harness
    first = (
        b'{"day": "2026-11-20", "at": "2026-11-20 10:00:00", "n": 12345678901234567890, '
        b'"s": {"a": 1}}\n'
    )
    assert (
        handler.handler(h.batch(h.land("ev/dt=1/events.jsonl", first)), lambda_context)[
            "batchItemFailures"
        ]
        == []
    )
    (converted,) = [e["detail"] for e in h.published() if e["detail-type"] == "FileConverted"]
    types = {c["name"]: c["type"] for c in converted["columns"]}
    assert types["n"] == "decimal128(38, 0)" and types["s"] == "struct<a: int64>"
    # When a later file turns the date into text
    later = b'{"day": "soon", "at": "2026-11-21 10:00:00", "n": 1, "s": {"a": 2}}\n'
    assert (
        handler.handler(h.batch(h.land("ev/dt=2/events.jsonl", later)), lambda_context)[
            "batchItemFailures"
        ]
        == []
    )
    # Then the stored schema was read back and the breaking change rejected (it used to be
    # unreadable, so the check never ran and the file was converted)
    events = h.published()
    (rejected,) = [e["detail"] for e in events if e["detail-type"] == "FileRejected"]
    assert rejected["reason_code"] == "schema_change"
    assert "day date -> string" in rejected["reason"]


def test_files_with_the_schema_already_stored_leave_the_schema_item_unwritten(
    harness, lambda_context
):
    # Given a dataset whose schema (dates, exact integers, nested) is stored by its first file
    h, handler = harness
    body = b'{"day": "2026-11-20", "n": 12345678901234567890, "s": {"a": 1}}\n'
    for n in range(3):
        # When more files of the same schema are converted
        key = h.land(f"ev/dt={n}/events.jsonl", body)
        assert handler.handler(h.batch(key), lambda_context)["batchItemFailures"] == []
    # Then the schema item was written once: its fingerprint is compared with the schema
    # the conversion already read, not written again per file
    audit = AuditStore("audit", boto3.client("dynamodb", region_name="us-east-1"))
    item = audit.get("dataset", "ev_events", "schema")
    assert item is not None and len(item.get("history", [])) == 1


def test_a_version_replaced_before_its_conversion_is_superseded_by_the_read_itself(
    harness, lambda_context, monkeypatch
):
    h, handler = harness
    key = "shop/replaced/orders.csv"
    old = h.land(key, b"id\n1\n")
    new = h.land(key, b"id\n2\n")  # lands before the old one's message is handled
    converter = handler.get_app().converter
    calls = []
    for name in ("head_object", "get_object"):
        real = getattr(converter.s3, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            if kwargs.get("Bucket") == "raw":
                calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(converter.s3, name, counted)
    assert handler.handler(h.batch(old), lambda_context)["batchItemFailures"] == []
    # one read told that the key moved on: no HEAD first, no output, no event
    assert calls == ["get_object"]
    assert "Contents" not in h.s3.list_objects_v2(
        Bucket="formatted", Prefix="formatted_stg/shop_replaced_orders/"
    )
    version = old["detail"]["object"]["version-id"]
    audit = AuditStore("audit", boto3.client("dynamodb", region_name="us-east-1"))
    assert audit.get("file", f"s3://raw/{key}", version)["status"] == "SUPERSEDED"
    assert [e for e in h.published() if e["detail-type"] == "FileConverted"] == []
    # the current version converts with that one read as well
    calls.clear()
    assert handler.handler(h.batch(new), lambda_context)["batchItemFailures"] == []
    assert calls == ["get_object"]
    (converted,) = [e for e in h.published() if e["detail-type"] == "FileConverted"]
    assert converted["detail"]["version_id"] == new["detail"]["object"]["version-id"]


def _count_put_events(converter, monkeypatch, fail_key="", fail_times=0):
    """Count the converter's PutEvents calls (entries per call); refuse the FileConverted
    of ``fail_key`` on the next ``fail_times`` calls."""
    marker = f'"key":"{fail_key}"' if fail_key else ""
    client = RefusingEvents(converter.publisher.events_client, marker, fail_times)
    monkeypatch.setattr(converter.publisher, "events_client", client)
    return client.calls


def test_the_file_converted_events_of_a_batch_share_one_put_events_call(
    harness, lambda_context, monkeypatch
):
    h, handler = harness
    landed = [h.land(f"b/batch/file{i}.csv", f"x\n{i}\n".encode()) for i in range(4)]
    calls = _count_put_events(handler.get_app().converter, monkeypatch)
    # the same event twice in the batch: converted once, the copy is no failure
    response = handler.handler(h.batch(*landed, landed[0]), lambda_context)
    assert response["batchItemFailures"] == []
    assert calls == [4]
    converted = [e["detail"]["key"] for e in h.published() if e["detail-type"] == "FileConverted"]
    assert sorted(converted) == [f"b/batch/file{i}.csv" for i in range(4)]


def test_a_file_converted_that_cannot_be_published_fails_only_its_record(
    harness, lambda_context, monkeypatch
):
    h, handler = harness
    ok = h.land("b/pub/one.csv", b"x\n1\n")
    stuck = h.land("b/pub/two.csv", b"x\n2\n")
    converter = handler.get_app().converter
    calls = _count_put_events(converter, monkeypatch, fail_key="b/pub/two.csv", fail_times=3)
    # When PutEvents refuses the second file's event on every attempt
    response = handler.handler(h.batch(ok, stuck), lambda_context)
    # Then only its record is retried: its claim released, the other one PROCESSED
    assert response["batchItemFailures"] == [{"itemIdentifier": "m1"}]
    assert calls == [2, 1, 1]
    audit = AuditStore("audit", boto3.client("dynamodb", region_name="us-east-1"))
    version = stuck["detail"]["object"]["version-id"]
    assert audit.get("file", "s3://raw/b/pub/two.csv", version)["status"] == "FAILED"
    version = ok["detail"]["object"]["version-id"]
    assert audit.get("file", "s3://raw/b/pub/one.csv", version)["status"] == "PROCESSED"
    # And the redelivered batch converts it, announcing each file exactly once in all
    assert handler.handler(h.batch(ok, stuck), lambda_context)["batchItemFailures"] == []
    converted = [e["detail"]["key"] for e in h.published() if e["detail-type"] == "FileConverted"]
    assert sorted(converted) == ["b/pub/one.csv", "b/pub/two.csv"]
    prefix = "formatted_stg/b_pub_two/"
    assert len(h.s3.list_objects_v2(Bucket="formatted", Prefix=prefix)["Contents"]) == 1


def test_a_warm_convert_function_opens_duckdb_once(harness, lambda_context, monkeypatch):
    """Opening a DuckDB database costs as much CPU as converting a small file: a warm
    container keeps the one its first conversion opened."""
    import duckdb

    from lakegov.convert import databases

    opened = []
    connect = duckdb.connect

    def counting(*args, **kwargs):
        opened.append(args)
        return connect(*args, **kwargs)

    monkeypatch.setattr(databases.duckdb, "connect", counting)
    h, handler = harness
    first = [h.land(f"b/warm/file{i}.csv", f"x\n{i}\n".encode()) for i in range(3)]
    rejected = h.land("b/warm/ragged.csv", b"id,amount\n1,2\n3\n")
    second = h.land("b/warm/file9.csv", b"x\n9\n")
    # When two invocations of one container convert four files and reject one
    assert handler.handler(h.batch(*first, rejected), lambda_context)["batchItemFailures"] == []
    assert handler.handler(h.batch(second), lambda_context)["batchItemFailures"] == []
    # Then every file has its output, and DuckDB opened one database for all of them
    events = [(e["detail-type"], e["detail"]["key"]) for e in h.published()]
    assert sorted(key for kind, key in events if kind == "FileConverted") == [
        *(f"b/warm/file{i}.csv" for i in range(3)),
        "b/warm/file9.csv",
    ]
    assert [key for kind, key in events if kind == "FileRejected"] == ["b/warm/ragged.csv"]
    assert len(opened) == 1

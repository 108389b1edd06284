"""Files over the threshold go to Athena: DDL, UNLOAD, then the same FileConverted."""

from dataclasses import replace

import boto3
import pytest
from moto import mock_aws
from moto.athena.models import QueryResults, athena_backends
from moto.core import DEFAULT_ACCOUNT_ID
from tests.conftest import RecordingPublisher, create_audit_table

from lakegov.audit import AuditStore
from lakegov.errors import RejectedFile
from lakegov.ingest.athena import AthenaConverter, AthenaJob, csv_dialect, ddl, header_columns
from lakegov.ingest.landed import LandedObject
from lakegov.ingest.service import Converter
from lakegov.settings import Settings

SETTINGS = Settings(
    environment="t",
    region="us-east-1",
    raw_bucket="raw",
    formatted_bucket="formatted",
    config_bucket="configs",
    service_bus="svc",
    audit_table="audit",
    glue_database_prefix="lakegov_t_",
    athena_threshold_bytes=10,
    athena_workgroup="wg",
)


@pytest.fixture
def parts():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in ("raw", "formatted", "configs"):
            s3.create_bucket(Bucket=bucket)
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        create_audit_table(ddb)
        athena = boto3.client("athena", region_name="us-east-1")
        athena.create_work_group(Name="wg")
        audit = AuditStore("audit", ddb)
        publisher = RecordingPublisher()
        big = AthenaConverter(
            athena=athena, s3=s3, audit=audit, publisher=publisher, settings=SETTINGS
        )
        converter = Converter(
            s3=s3, publisher=publisher, audit=audit, settings=SETTINGS, athena=big
        )
        yield {
            "s3": s3,
            "athena": athena,
            "audit": audit,
            "publisher": publisher,
            "big": big,
            "converter": converter,
        }


def _land(parts, key, body):
    etag = parts["s3"].put_object(Bucket="raw", Key=key, Body=body)["ETag"].strip('"')
    return LandedObject("raw", key, size=len(body), etag=etag)


def _sql(parts, query_id):
    return parts["athena"].get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Query"]


def test_a_large_csv_is_converted_by_athena_and_ends_in_the_same_event(parts):
    landed = _land(parts, "sales/order_dt=2026-11-20/orders.csv", b"Order Id,Amount\n1,2.5\n")
    outcome = parts["converter"].process(landed)
    assert outcome.status == "CONVERTING"
    ddl_id = outcome.reason.rsplit(" ", 1)[-1]
    ddl = _sql(parts, ddl_id)
    assert "CREATE EXTERNAL TABLE `lakegov_t_athena_tmp`" in ddl and "`order_id` string" in ddl
    assert (
        "LOCATION 's3://raw/sales/order_dt=2026-11-20/'" in ddl and "skip.header.line.count" in ddl
    )
    # a redelivery while Athena works is a duplicate, not a second job
    assert parts["converter"].process(landed).status == "DUPLICATE"

    assert parts["big"].on_state_change(ddl_id, "SUCCEEDED") == "unloading"
    assert parts["big"].on_state_change(ddl_id, "SUCCEEDED") == "duplicate"
    unload_item = next(
        i for i in parts["audit"].recent("athena", limit=5) if i["version"] == "unload"
    )
    unload_sql = _sql(parts, unload_item["subject"])
    # typed from the file's head: the UNLOAD casts, a value that does not fit becomes NULL
    assert 'SELECT TRY_CAST(NULLIF("order_id", \'\') AS bigint) AS "order_id", ' in unload_sql
    assert 'TRY_CAST(NULLIF("amount", \'\') AS double) AS "amount" FROM' in unload_sql
    assert "WHERE \"$path\" = 's3://raw/sales/order_dt=2026-11-20/orders.csv'" in unload_sql
    prefix = unload_item["job"]["output_prefix"]
    assert prefix.startswith("_tmp/athena/sales_orders/")
    parts["s3"].put_object(Bucket="formatted", Key=f"{prefix}20261121_0001", Body=b"PAR1")

    assert parts["big"].on_state_change(unload_item["subject"], "SUCCEEDED") == "counting"
    count_item = next(
        i for i in parts["audit"].recent("athena", limit=10) if i["version"] == "count"
    )
    count_sql = _sql(parts, count_item["subject"])
    assert count_sql.startswith("SELECT count(*) AS row_count, count_if(")
    # what Athena answers to the count query (moto runs no SQL: its answer is queued here)
    athena_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].query_results_queue.append(
        QueryResults(
            rows=[
                {"Data": [{"VarCharValue": "row_count"}, {"VarCharValue": "bad_rows"}]},
                {"Data": [{"VarCharValue": "1"}, {"VarCharValue": "0"}]},
            ],
            column_info=[],
        )
    )
    assert parts["big"].on_state_change(count_item["subject"], "SUCCEEDED") == "converted"
    ((_, detail),) = [e for e in parts["publisher"].events if e[0] == "FileConverted"]
    (key,) = detail["output_keys"]
    assert detail["engine"] == "athena" and key.startswith(
        "formatted_stg/sales_orders/order_dt=2026-11-20/orders-"
    )
    assert parts["s3"].get_object(Bucket="formatted", Key=key)["Body"].read() == b"PAR1"
    assert parts["s3"].list_objects_v2(Bucket="formatted", Prefix=prefix)["KeyCount"] == 0
    assert detail["partition_values"] == {"order_dt": "2026-11-20"}
    assert detail["rows"] == 1 and detail["bad_rows"] == 0
    assert [(c["name"], c["type"]) for c in detail["columns"]] == [
        ("order_id", "int64"),
        ("amount", "double"),
    ]
    item = parts["audit"].get(
        "file", "s3://raw/sales/order_dt=2026-11-20/orders.csv", landed.version
    )
    assert item["status"] == "PROCESSED"


def test_an_athena_failure_quarantines_the_file(parts):
    landed = _land(parts, "crm/contacts.json", b'{"id": 1, "name": "a"}\n{"id": 2}\n')
    ddl_id = parts["converter"].process(landed).reason.rsplit(" ", 1)[-1]
    ddl = _sql(parts, ddl_id)
    assert "org.openx.data.jsonserde.JsonSerDe" in ddl and "'mapping.name' = 'name'" in ddl
    assert (
        parts["big"].on_state_change(ddl_id, "FAILED", "HIVE_BAD_DATA: malformed JSON")
        == "rejected"
    )
    ((_, detail),) = [e for e in parts["publisher"].events if e[0] == "FileRejected"]
    assert "HIVE_BAD_DATA" in detail["reason"]
    parts["s3"].head_object(Bucket="raw", Key="quarantine/crm/contacts.json")


def test_small_files_stay_in_lambda(parts):
    converter = parts["converter"]
    converter.settings = replace(SETTINGS, athena_threshold_bytes=10_000)
    assert converter.process(_land(parts, "a/b.csv", b"x\n1\n")).status == "PROCESSED"


def test_header_columns_are_read_from_the_first_bytes():
    assert header_columns(b"a;b;c\n1;2;3\n", "csv", None) == ["a", "b", "c"]
    assert header_columns(b'{"a": 1}\n{"b": 2}\n{"c"', "json", None) == ["a", "b"]


def test_the_athena_table_skips_the_preamble_and_takes_the_detected_dialect():
    head = b"Report by ERP\n\nid;name\n1;'a; b'\n2;c\n3;'d'\n"
    dialect = csv_dialect(head, None)
    assert header_columns(head, "csv", None) == ["id", "name"]
    job = AthenaJob(
        "raw", "a/b.csv", "v", "d", "t", {}, "tmp", "t_v", ["id", "name"], "o/", "p/", "f"
    )
    sql = ddl(job, "csv", dialect, ["id", "name"])
    assert "'separatorChar' = ';', 'quoteChar' = '''', 'escapeChar' = '\\\\'" in sql
    assert "'skip.header.line.count' = '3'" in sql


def test_a_dialect_athena_cannot_read_is_refused_clearly():
    with pytest.raises(RejectedFile) as err:
        csv_dialect(b"a, b\n1, 2\n3, 4\n", None)
    assert err.value.reason_code == "unsupported_format"
    assert "delimiter ', '" in err.value.reason


def test_a_json_array_too_large_for_lambda_is_refused_clearly():
    # Athena's JSON SerDe reads one object per line: an array would be misread
    with pytest.raises(RejectedFile) as err:
        header_columns(b'[\n  {"a": 1},\n  {"a": 2}\n]\n', "json", None)
    assert err.value.reason_code == "unsupported_format"
    assert "JSON Lines" in err.value.reason


def test_the_athena_state_change_handler_does_not_load_duckdb():
    # the handler advances queries; only the convert function types a file's head
    import subprocess
    import sys

    code = "import sys, handlers.athena; print('duckdb' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": "src", "AWS_DEFAULT_REGION": "us-east-1", "PATH": ""},
    )
    assert out.stdout.strip() == "False"

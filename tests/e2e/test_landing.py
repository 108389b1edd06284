"""Landed files on the embedded runtime: upload -> Parquet -> FileConverted -> catalog."""

import io

import pyarrow.parquet as pq
import pytest
from tests.conftest import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("runtime")]


def test_an_upload_becomes_a_catalogued_parquet_partition(service):
    out = service.outputs
    key = "mwaa/blog/partition_dt=2026-11-20/customers.json"
    service.client("s3").put_object(
        Bucket=out["RawBucketName"],
        Key=key,
        Body=(ROOT / "examples/data/customers.json").read_bytes(),
    )
    converted = service.wait_for_event("FileConverted", lambda d: d["key"] == key)["detail"]
    assert converted["table"] == "mwaa_blog_customers" and converted["rows"] == 32
    body = service.client("s3").get_object(
        Bucket=out["FormattedBucketName"], Key=converted["output_keys"][0]
    )
    table = pq.read_table(io.BytesIO(body["Body"].read()))
    assert table.num_rows == 32 and "email" in table.column_names

    refreshed = service.wait_for_event(
        "DatasetRefreshed", lambda d: d["table"] == "mwaa_blog_customers"
    )["detail"]
    assert refreshed["database"] == "lakegov_dev_formatted_stg"
    assert {"partition_dt": "2026-11-20"} in refreshed["partitions"]
    # and the refresh reaches the central bus, for the subscribed domains
    central = service.outputs["CentralEventBusArn"].rsplit("/", 1)[-1]
    service.wait_for_event(
        "DatasetRefreshed", lambda d: d["table"] == "mwaa_blog_customers", bus=central
    )
    glue = service.client("glue")
    glue_table = glue.get_table(
        DatabaseName="lakegov_dev_formatted_stg", Name="mwaa_blog_customers"
    )["Table"]
    assert [k["Name"] for k in glue_table["PartitionKeys"]] == ["partition_dt"]
    partitions = glue.get_partitions(
        DatabaseName="lakegov_dev_formatted_stg", TableName="mwaa_blog_customers"
    )
    assert [p["Values"] for p in partitions["Partitions"]] == [["2026-11-20"]]


def test_a_bad_upload_is_quarantined_and_audited(service):
    out = service.outputs
    key = "finance/ledger/ledger.csv.gz"
    service.client("s3").put_object(Bucket=out["RawBucketName"], Key=key, Body=b"not gzip at all")
    rejected = service.wait_for_event("FileRejected", lambda d: d["key"] == key)["detail"]
    assert rejected["reason_code"] in ("malformed", "decompression_bomb", "unsupported_format")
    assert rejected["quarantine_key"] == f"quarantine/{key}"
    head = service.client("s3").head_object(Bucket=out["RawBucketName"], Key=key)
    item = service.client("dynamodb").get_item(
        TableName=out["AuditTableName"],
        Key={
            "pk": {"S": f"file#s3://{out['RawBucketName']}/{key}"},
            "sk": {"S": head["VersionId"]},
        },
    )["Item"]
    assert item["status"]["S"] == "REJECTED"
    # the quarantine copy itself is not treated as a landed file
    service.wait_idle(timeout=30)
    assert len(service.events_of("FileRejected")) == len(
        {e["detail"]["key"] for e in service.events_of("FileRejected")}
    )

"""The catalog on the embedded runtime with the real template: FileConverted on the service
bus -> Glue table with its partition -> DatasetRefreshed, directly or through the crawler."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.conftest import ROOT

from lakegov.events import validate_detail
from lakegov.local.runtime import LocalRuntime

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("runtime")]

DATABASE = "lakegov_dev_formatted_stg"
DATA = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "name": ["ann", "bob", "cy"]})


@pytest.fixture(scope="module")
def runtime():
    with LocalRuntime(ROOT / "template.yaml", stack_name="catalog") as rt:
        # A one-second coalescing window instead of a minute, so the test is quick.
        rt.function("CatalogFunction").environment["CRAWL_COALESCE_SECONDS"] = "1"
        yield rt


def _convert(rt, table, day, version, **extra):
    """What the convert function does: write Parquet, then publish FileConverted."""
    bucket = rt.outputs["FormattedBucketName"]
    key = f"formatted_stg/{table}/partition_dt={day}/{version}.parquet"
    sink = io.BytesIO()
    pq.write_table(DATA, sink)
    rt.client("s3").put_object(Bucket=bucket, Key=key, Body=sink.getvalue())
    detail = {
        "bucket": rt.outputs["RawBucketName"],
        "key": f"mwaa/blog/partition_dt={day}/{table}-{version}.csv",
        "version_id": version,
        "dataset": table,
        "table": table,
        "partition_values": {"partition_dt": day},
        "output_bucket": bucket,
        "output_keys": [key],
        "rows": DATA.num_rows,
        "schema_fingerprint": "0123456789abcdef",
        "columns": [{"name": "id", "type": "int64"}, {"name": "name", "type": "string"}],
        "converted_at": "2026-11-20T10:00:00.000Z",
        **extra,
    }
    validate_detail("FileConverted", detail)
    response = rt.client("events").put_events(
        Entries=[
            {
                "Source": "lakegov",
                "DetailType": "FileConverted",
                "Detail": json.dumps(detail),
                "EventBusName": rt.outputs["ServiceEventBusName"],
            }
        ]
    )
    assert response["FailedEntryCount"] == 0


def test_the_original_databases_exist_per_environment(runtime):
    names = {d["Name"] for d in runtime.client("glue").get_databases()["DatabaseList"]}
    assert {
        "lakegov_dev_formatted_stg",
        "lakegov_dev_formatted",
        "lakegov_dev_formatted_exception",
        "lakegov_dev_published",
    } <= names


def test_a_converted_file_is_registered_directly_and_announced(runtime):
    # Given a converted file of a new dataset (direct mode, the default)
    _convert(runtime, "mwaa_blog_customers", "2026-11-20", "v1")
    # When the catalog has handled its FileConverted
    refreshed = runtime.wait_for_event(
        "DatasetRefreshed",
        lambda d: d["table"] == "mwaa_blog_customers",
        bus=runtime.outputs["ServiceEventBusName"],
        timeout=60,
    )["detail"]
    # Then the Glue table and its partition exist, and the refresh says so
    glue = runtime.client("glue")
    table = glue.get_table(DatabaseName=DATABASE, Name="mwaa_blog_customers")["Table"]
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == ["id", "name"]
    glue.get_partition(
        DatabaseName=DATABASE, TableName="mwaa_blog_customers", PartitionValues=["2026-11-20"]
    )
    validate_detail("DatasetRefreshed", refreshed)
    assert refreshed["mode"] == "direct" and refreshed["database"] == DATABASE
    assert refreshed["partitions"] == [{"partition_dt": "2026-11-20"}]
    assert refreshed["row_count"] == 3


def test_a_burst_in_crawler_mode_makes_one_crawl_through_the_local_stand_in(runtime):
    # Given three converted files of a crawler-mode dataset, arriving together
    for n, day in enumerate(["2026-11-20", "2026-11-20", "2026-11-21"]):
        _convert(runtime, "mwaa_blog_cards", day, f"c{n}", catalog_mode="crawler")
    # When the coalesced crawl has run and its state change came back
    refreshed = runtime.wait_for_event(
        "DatasetRefreshed",
        lambda d: d["table"] == "mwaa_blog_cards",
        bus=runtime.outputs["ServiceEventBusName"],
        timeout=90,
    )["detail"]
    # Then the crawler (created on demand) ran once and registered the table and partitions
    glue = runtime.client("glue")
    crawler = glue.get_crawler(Name="lakegov_dev_mwaa_blog_cards")["Crawler"]
    assert crawler["RecrawlPolicy"]["RecrawlBehavior"] == "CRAWL_NEW_FOLDERS_ONLY"
    table = glue.get_table(DatabaseName=DATABASE, Name="mwaa_blog_cards")["Table"]
    assert table["PartitionKeys"] == [{"Name": "partition_dt", "Type": "string"}]
    parts = glue.get_partitions(DatabaseName=DATABASE, TableName="mwaa_blog_cards")["Partitions"]
    assert sorted(p["Values"][0] for p in parts) == ["2026-11-20", "2026-11-21"]
    assert refreshed["mode"] == "crawler" and len(refreshed["source_files"]) == 3
    runtime.wait_idle(timeout=60)
    crawls = glue.list_crawls(CrawlerName="lakegov_dev_mwaa_blog_cards")["Crawls"]
    assert len(crawls) == 1
    cards = [
        e
        for e in runtime.events_of("DatasetRefreshed", bus=runtime.outputs["ServiceEventBusName"])
        if e["detail"]["table"] == "mwaa_blog_cards"
    ]
    assert len(cards) == 1

"""Partition folders as the converter writes them, and unpartitioned tables (moto).

The converter percent-encodes partition values in folder names; a Glue partition must
point at the folder holding its Parquet (encoded) and carry the decoded values. A table
without partition folders has no partitions at all (no BatchCreatePartition call).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from tests.integration.catalog.support import (
    ACCOUNT,
    FORMATTED,
    RAW,
    REGION,
    STAGING,
    count_calls,
    fingerprint,
    messages,
    put_parquet,
)

from lakegov.catalog.crawler import CrawlLedger, handle_crawler_state
from lakegov.catalog.service import process_batch
from lakegov.events import validate_detail
from lakegov.layout import parse_key
from lakegov.local.crawler import LocalCrawlerStarter

DATA = pa.table({"id": pa.array([1, 2], pa.int64()), "name": ["ann", "bob"]})

ENCODED = [
    ("qa/colon/hour=2026-11-21T10:00/simple.csv", "hour=2026-11-21T10%3A00/", "2026-11-21T10:00"),
    ("qa/space/dt=2026 11 21/simple.csv", "dt=2026%2011%2021/", "2026 11 21"),
    ("qa/idf/region=Île-de-France/simple.csv", "region=%C3%8Ele-de-France/", "Île-de-France"),
]
UNPARTITIONED = ["root_file.csv", "qa/nopart/simple.csv"]


def _landed(env: Any, landed: str, version: str = "v1", **extra: Any) -> dict[str, Any]:
    """What the converter publishes for ``landed`` (its own key layout), Parquet written."""
    ref = parse_key(landed)
    key = ref.output_key(version)
    put_parquet(env.s3, key, DATA)
    return {
        "bucket": RAW,
        "key": landed,
        "version_id": version,
        "dataset": ref.dataset_id,
        "table": ref.table_name,
        "partition_values": dict(ref.partitions),
        "output_bucket": FORMATTED,
        "output_keys": [key],
        "rows": DATA.num_rows,
        "schema_fingerprint": fingerprint(DATA.schema),
        "converted_at": "2026-11-21T10:00:00.000Z",
        **extra,
    }


def _partitions(env: Any, table: str) -> list[dict[str, Any]]:
    pages = env.glue.get_paginator("get_partitions").paginate(DatabaseName=STAGING, TableName=table)
    return [p for page in pages for p in page["Partitions"]]


def _folder_of(key: str) -> str:
    return f"s3://{FORMATTED}/{key.rsplit('/', 1)[0]}/"


def _crawl(env: Any, detail: dict[str, Any]) -> dict[str, Any]:
    """Crawler mode end to end: FileConverted, the start, the local crawl, its success."""
    assert process_batch(messages(detail), env.services()).failed == []
    starter = LocalCrawlerStarter(
        glue=env.glue, s3=env.s3, events=env.events, account=ACCOUNT, region=REGION
    )
    assert process_batch(env.queued(), env.services(start_crawler=starter)).failed == []
    (crawler,) = env.glue.list_crawlers()["CrawlerNames"]
    outcome = handle_crawler_state(
        {"crawlerName": crawler, "state": "Succeeded"},
        event_id="evt-1",
        glue=env.glue,
        ledger=CrawlLedger(env.settings.audit_table, env.ddb),
        audit=env.audit,
        settings=env.settings,
        publish=env.publisher.publish,
    )
    assert outcome is not None and outcome.refreshed is not None
    return outcome.refreshed


@pytest.mark.parametrize(("landed", "folder", "value"), ENCODED)
def test_a_direct_partition_is_located_in_the_encoded_folder_holding_its_parquet(
    env, landed, folder, value
):
    # Given the converter's output for a landed file whose partition value needs encoding
    detail = _landed(env, landed)
    (key,) = detail["output_keys"]
    assert f"/{folder}" in key
    # When the catalog registers it directly
    assert process_batch(messages(detail), env.services()).failed == []
    # Then the partition's Location is exactly the folder of the Parquet, Values decoded
    (part,) = _partitions(env, detail["table"])
    assert part["Values"] == [value]
    assert part["StorageDescriptor"]["Location"] == _folder_of(key)
    listed = env.s3.list_objects_v2(
        Bucket=FORMATTED, Prefix=part["StorageDescriptor"]["Location"].split("/", 3)[3]
    )
    assert [o["Key"] for o in listed["Contents"]] == [key]
    # And DatasetRefreshed names the decoded value
    (refreshed,) = env.published("DatasetRefreshed")
    assert refreshed["partitions"] == [dict(detail["partition_values"])]


@pytest.mark.parametrize(("landed", "folder", "value"), ENCODED)
def test_the_local_crawler_registers_encoded_folders_with_decoded_values(
    env, landed, folder, value
):
    # Given the converter's output, catalogued in crawler mode
    detail = _landed(env, landed, catalog_mode="crawler")
    (key,) = detail["output_keys"]
    # When the crawl runs (local stand-in) and succeeds
    refreshed = _crawl(env, detail)
    # Then the crawler's partition has the decoded value, located where the Parquet is
    (part,) = _partitions(env, detail["table"])
    assert part["Values"] == [value]
    assert part["StorageDescriptor"]["Location"] == _folder_of(key)
    assert refreshed["partitions"] == [{key.split("/")[2].split("=")[0]: value}]


@pytest.mark.parametrize("landed", UNPARTITIONED)
def test_an_unpartitioned_table_gets_no_partition_and_no_partition_call(env, landed):
    # Given the converter's output for a file without partition folders
    detail = _landed(env, landed)
    calls = count_calls(env.glue, "BatchCreatePartition")
    # When the catalog registers it, twice over (a second file of the same table)
    assert process_batch(messages(detail), env.services()).failed == []
    again = _landed(env, landed, version="v2")
    assert process_batch(messages(again), env.services()).failed == []
    # Then the table has no partition keys and no partitions, and no partition call was made
    table = env.glue.get_table(DatabaseName=STAGING, Name=detail["table"])["Table"]
    assert table["PartitionKeys"] == []
    assert table["StorageDescriptor"]["Location"] == _folder_of(detail["output_keys"][0])
    assert _partitions(env, detail["table"]) == []
    assert calls == []
    # And each DatasetRefreshed says: no partitions
    refreshed = env.published("DatasetRefreshed")
    assert [r["partitions"] for r in refreshed] == [[], []]
    validate_detail("DatasetRefreshed", refreshed[0])


def test_an_unpartitioned_table_is_never_projected_even_when_asked(env):
    detail = _landed(env, "qa/nopart/simple.csv", partition_projection="enabled")
    assert process_batch(messages(detail), env.services()).failed == []
    table = env.glue.get_table(DatabaseName=STAGING, Name="qa_nopart_simple")["Table"]
    assert "projection.enabled" not in table["Parameters"]


@pytest.mark.parametrize("landed", UNPARTITIONED)
def test_an_unpartitioned_table_in_crawler_mode_refreshes_without_partitions(env, landed):
    detail = _landed(env, landed, catalog_mode="crawler")
    refreshed = _crawl(env, detail)
    assert refreshed["partitions"] == []
    assert _partitions(env, detail["table"]) == []
    validate_detail("DatasetRefreshed", refreshed)

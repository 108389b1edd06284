"""The crawler's local stand-in on moto: registers what it finds, emits the real events."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from tests.integration.catalog.support import ACCOUNT, FORMATTED, REGION, STAGING, put_parquet

from lakegov.catalog.crawler import CrawlerBusy, crawler_definition
from lakegov.local.crawler import LocalCrawlerStarter

CRAWLER = "lakegov_test_orders"
DATA = pa.table({"id": pa.array([1, 2], pa.int64()), "city": ["Oslo", "Rome"]})


@pytest.fixture
def crawler_env(env):
    env.glue.create_crawler(
        **crawler_definition(
            CRAWLER,
            role="arn:aws:iam::123456789012:role/crawler",
            database=STAGING,
            target=f"s3://{FORMATTED}/formatted_stg/orders/",
            dataset="orders",
            table="orders",
        )
    )
    url = env.sqs.create_queue(QueueName="glue-events")["QueueUrl"]
    env.events.put_rule(
        Name="glue-events", EventPattern=json.dumps({"source": ["aws.glue"]}), State="ENABLED"
    )
    env.events.put_targets(
        Rule="glue-events",
        Targets=[{"Id": "q", "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:glue-events"}],
    )
    starter = LocalCrawlerStarter(
        glue=env.glue, s3=env.s3, events=env.events, account=ACCOUNT, region=REGION
    )
    return env, starter, url


def _events(env, url):
    got = env.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in got]


def test_starting_the_local_crawler_registers_tables_and_partitions_and_emits_the_events(
    crawler_env,
):
    env, starter, url = crawler_env
    # Given Parquet in two partitions of the crawler's target (and a writer marker file)
    put_parquet(env.s3, "formatted_stg/orders/partition_dt=2026-11-20/a.parquet", DATA)
    put_parquet(env.s3, "formatted_stg/orders/partition_dt=2026-11-21/b.parquet", DATA)
    env.s3.put_object(Bucket=FORMATTED, Key="formatted_stg/orders/_SUCCESS", Body=b"")
    # When the crawler is started through the stand-in
    starter(CRAWLER)
    # Then the table exists with the Parquet's columns, partitioned by the folders
    table = env.glue.get_table(DatabaseName=STAGING, Name="orders")["Table"]
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == ["id", "city"]
    assert table["PartitionKeys"] == [{"Name": "partition_dt", "Type": "string"}]
    parts = env.glue.get_partitions(DatabaseName=STAGING, TableName="orders")["Partitions"]
    assert sorted(p["Values"][0] for p in parts) == ["2026-11-20", "2026-11-21"]
    # And the real state-change events went to the default bus: Started, then Succeeded
    events = _events(env, url)
    assert [e["detail"]["state"] for e in events] == ["Started", "Succeeded"]
    done = events[-1]
    assert done["source"] == "aws.glue" and done["detail-type"] == "Glue Crawler State Change"
    assert done["detail"]["crawlerName"] == CRAWLER
    assert done["detail"]["partitionsCreated"] == "2" and done["detail"]["tablesCreated"] == "1"
    # And the crawler is ready again: a later start crawls only what is new
    put_parquet(env.s3, "formatted_stg/orders/partition_dt=2026-11-22/c.parquet", DATA)
    starter(CRAWLER)
    assert _events(env, url)[-1]["detail"]["partitionsCreated"] == "1"


def test_a_running_crawler_makes_the_stand_in_raise_busy(crawler_env):
    env, starter, url = crawler_env
    env.glue.start_crawler(Name=CRAWLER)
    with pytest.raises(CrawlerBusy):
        starter(CRAWLER)
    assert _events(env, url) == []


def test_an_unreadable_file_makes_the_crawl_fail_with_the_reason(crawler_env):
    env, starter, url = crawler_env
    env.s3.put_object(
        Bucket=FORMATTED, Key="formatted_stg/orders/partition_dt=1/x.parquet", Body=b"not parquet"
    )
    starter(CRAWLER)
    failed = _events(env, url)[-1]["detail"]
    assert failed["state"] == "Failed"
    assert "not a readable Parquet file" in failed["errorMessage"]
    assert env.glue.get_crawler(Name=CRAWLER)["Crawler"]["State"] == "READY"

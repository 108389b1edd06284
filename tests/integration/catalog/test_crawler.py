"""Crawler mode on moto: coalescing, a busy crawler, outcomes, the crawler's definition."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pytest
from tests.integration.catalog.support import (
    CRAWLER_ROLE,
    FORMATTED,
    STAGING,
    Atomic,
    envelope,
    file_converted,
    messages,
)

from lakegov.audit import AuditStore
from lakegov.catalog.crawler import CrawlLedger, handle_crawler_state, sqs_send_later
from lakegov.catalog.service import Message, process_batch
from lakegov.events import validate_detail
from lakegov.observability import metrics

DATA = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "name": ["a", "b", "c"]})
CRAWLER = "lakegov_test_orders"


def _burst(env, n, *, start=0):
    return [
        file_converted(
            "orders",
            DATA,
            [{"partition_dt": f"2026-11-{1 + i % 3:02d}"}],
            s3=env.s3,
            version=f"v{start + i}",
            catalog_mode="crawler",
        )
        for i in range(start, start + n)
    ]


def _finish_running_crawl(env):
    """moto completes a crawl once its crawls have been listed."""
    env.glue.list_crawls(CrawlerName=CRAWLER)


def _state_event(env, state, event_id, **detail):
    return handle_crawler_state(
        {"crawlerName": CRAWLER, "state": state, **detail},
        event_id=event_id,
        glue=env.glue,
        ledger=CrawlLedger(env.settings.audit_table, env.ddb),
        audit=env.audit,
        settings=env.settings,
        publish=env.publisher.publish,
    )


def test_a_burst_of_a_hundred_files_makes_one_crawl(env):
    # Given a hundred converted files of one crawler-mode dataset, in batches of ten
    details = _burst(env, 100)
    for start in range(0, 100, 10):
        result = process_batch(messages(*details[start : start + 10]), env.services())
        assert result.failed == []
    # Then a single delayed start message was queued for the whole burst
    queued = env.queued()
    assert len(queued) == 1
    # When it arrives, the crawler is created and started once
    process_batch(queued, env.services())
    assert env.starter.started == [CRAWLER]
    assert env.queued() == []
    # And its success announces all hundred files and their three partitions
    _finish_running_crawl(env)
    outcome = _state_event(env, "Succeeded", "evt-1", partitionsCreated="3")
    refreshed = outcome.refreshed
    validate_detail("DatasetRefreshed", refreshed)
    assert refreshed["mode"] == "crawler" and refreshed["table"] == "orders"
    assert refreshed["database"] == STAGING
    assert len(refreshed["source_files"]) == 100
    assert refreshed["row_count"] == 300
    assert sorted(p["partition_dt"] for p in refreshed["partitions"]) == [
        "2026-11-01",
        "2026-11-02",
        "2026-11-03",
    ]
    batch = env.audit.versions("crawl", CRAWLER)
    assert [i["status"] for i in batch if i["sk"] not in ("pending",)] == ["SUCCEEDED"]


def test_concurrent_workers_under_a_burst_start_at_most_two_crawls(env):
    # Given four workers handling a hundred files while a fifth drains the start messages
    # at once (no coalescing window), and the first crawl runs for the whole burst
    details = _burst(env, 100)
    stop = threading.Event()
    send_now = sqs_send_later(env.sqs, env.queue_url)
    ddb = Atomic(env.ddb)
    svc = env.services(
        send_later=lambda body, delay: send_now(body, 0),
        dynamodb=ddb,
        audit=AuditStore(env.settings.audit_table, ddb),
    )

    def drain():
        while not stop.is_set():
            got = env.queued()
            if got:
                process_batch(got, svc)
            else:
                time.sleep(0.05)

    drainer = threading.Thread(target=drain)
    drainer.start()
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(
                lambda s: process_batch(messages(*details[s : s + 10]), svc),
                range(0, 100, 10),
            )
        )
    stop.set()
    drainer.join()
    # When the first crawl ends and the waiting start is handled
    _finish_running_crawl(env)
    for _ in range(3):
        process_batch(env.queued(), env.services())
    # Then every file was accepted, and the crawler started at most twice, not per file
    assert all(r.failed == [] for r in results)
    assert 1 <= len(env.starter.started) <= 2
    ledger = CrawlLedger(env.settings.audit_table, env.ddb)
    assert ledger.pending(CRAWLER) is None
    # And the started batches together hold every one of the hundred files
    batches = [i for i in env.audit.versions("crawl", CRAWLER) if i.get("kind") == "crawl"]
    assert sum(int(b["files"]) for b in batches) == 100
    assert {b["status"] for b in batches} == {"RUNNING"}


def test_a_running_crawler_defers_the_start_and_later_files_join_it(env):
    # Given a crawl requested for one file while the crawler is already running
    process_batch(messages(*_burst(env, 1)), env.services())
    (start,) = env.queued()
    env.glue.create_crawler(
        Name=CRAWLER,
        Role=CRAWLER_ROLE,
        DatabaseName=STAGING,
        Targets={"S3Targets": [{"Path": f"s3://{FORMATTED}/formatted_stg/orders/"}]},
    )
    env.glue.start_crawler(Name=CRAWLER)
    # When its start message arrives
    result = process_batch([start], env.services())
    # Then the start is deferred: re-queued with a delay, not lost, not failed
    assert result.crawl_starts == ["deferred"] and result.failed == []
    (retry,) = env.sqs.receive_message(
        QueueUrl=env.queue_url, AttributeNames=["All"], VisibilityTimeout=0
    ).get("Messages", []) or [None]  # a delayed message is not visible yet
    assert retry is None
    attrs = env.sqs.get_queue_attributes(
        QueueUrl=env.queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attrs["ApproximateNumberOfMessagesDelayed"] == "1"
    # And files arriving meanwhile join the deferred batch instead of queuing more starts
    process_batch(messages(*_burst(env, 5, start=1)), env.services())
    ledger = CrawlLedger(env.settings.audit_table, env.ddb)
    assert ledger.pending(CRAWLER)["batch_id"]["S"] == start.body["batch_id"]
    # When the running crawl ends and the re-queued start arrives, the crawler starts
    _finish_running_crawl(env)
    body = json.loads(json.dumps(start.body)) | {"attempt": 1}
    result = process_batch([Message("retry", body)], env.services())
    assert result.crawl_starts == ["started"]
    assert env.starter.started == [CRAWLER]
    outcome = _state_event(env, "Succeeded", "evt-2")
    assert len(outcome.refreshed["source_files"]) == 6


def test_a_failed_crawl_is_audited_and_announces_no_refresh(env):
    # Given a started crawl
    process_batch(messages(*_burst(env, 2)), env.services())
    process_batch(env.queued(), env.services())
    # When the crawler reports failure
    outcome = _state_event(env, "Failed", "evt-3", errorMessage="Access denied to the target")
    # Then the batch is audited FAILED with the reason, and nothing is refreshed
    assert outcome.state == "Failed"
    item = env.audit.get("crawl", CRAWLER, outcome.batch_id)
    assert item["status"] == "FAILED"
    assert item["history"][-1]["note"] == "Access denied to the target"
    assert env.published("DatasetRefreshed") == []
    # And its running marker is closed: the next success is not attributed to it
    assert CrawlLedger(env.settings.audit_table, env.ddb).oldest_running(CRAWLER) is None


def test_a_duplicate_state_change_event_is_handled_once(env):
    process_batch(messages(*_burst(env, 1)), env.services())
    process_batch(env.queued(), env.services())
    assert _state_event(env, "Succeeded", "evt-4") is not None
    assert _state_event(env, "Succeeded", "evt-4") is None
    assert len(env.published("DatasetRefreshed")) == 1


def test_a_crawler_started_elsewhere_still_refreshes_its_table(env):
    # Given a crawler lakegov did not start (from the console, or the template's schedule)
    env.glue.create_crawler(
        Name=CRAWLER,
        Role=CRAWLER_ROLE,
        DatabaseName=STAGING,
        Targets={"S3Targets": [{"Path": f"s3://{FORMATTED}/formatted_stg/orders/"}]},
    )
    outcome = _state_event(env, "Succeeded", "evt-5")
    assert (outcome.refreshed["database"], outcome.refreshed["table"]) == (STAGING, "orders")
    assert outcome.refreshed["row_count"] is None
    validate_detail("DatasetRefreshed", outcome.refreshed)


def test_an_on_demand_crawler_crawls_new_folders_of_its_dataset_only(env):
    process_batch(messages(*_burst(env, 1)), env.services())
    process_batch(env.queued(), env.services())
    crawler = env.glue.get_crawler(Name=CRAWLER)["Crawler"]
    assert crawler["Role"] == CRAWLER_ROLE and crawler["DatabaseName"] == STAGING
    (target,) = crawler["Targets"]["S3Targets"]
    assert target["Path"] == f"s3://{FORMATTED}/formatted_stg/orders/"
    assert crawler["RecrawlPolicy"] == {"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"}
    assert crawler["SchemaChangePolicy"] == {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"}
    config = json.loads(crawler["Configuration"])
    assert config["Grouping"]["TableLevelConfiguration"] == 3  # bucket/formatted_stg/orders


def test_crawler_mode_applies_an_additive_change_to_an_existing_table_itself(env):
    # Given a table catalogued before (directly)
    first = file_converted("orders", DATA, s3=env.s3, version="v0")
    process_batch(messages(first), env.services())
    # When a crawler-mode file brings a new column (the crawler's LOG policy would not)
    wider = DATA.append_column("email", pa.array(["x", "y", "z"]))
    detail = file_converted("orders", wider, s3=env.s3, version="v1", catalog_mode="crawler")
    process_batch(messages(detail), env.services())
    columns = env.glue.get_table(DatabaseName=STAGING, Name="orders")["Table"]["StorageDescriptor"][
        "Columns"
    ]
    assert [c["Name"] for c in columns] == ["id", "name", "email"]
    (changed,) = env.published("SchemaChanged")
    assert (changed["change"], changed["action"]) == ("additive", "applied")
    assert len(env.queued()) == 1  # and the crawl is requested


def test_crawler_failure_through_the_handler_emits_the_metric(
    env, monkeypatch, capsys, lambda_context
):
    # Given the state-change function's environment
    for name, value in {
        "LAKEGOV_ENVIRONMENT": "test",
        "RAW_BUCKET": "lakegov-raw",
        "FORMATTED_BUCKET": FORMATTED,
        "CONFIG_BUCKET": "lakegov-config",
        "SERVICE_BUS": env.settings.service_bus,
        "AUDIT_TABLE": env.settings.audit_table,
        "POWERTOOLS_METRICS_DISABLED": "false",
    }.items():
        monkeypatch.setenv(name, value)
    from handlers.catalog_crawler import handler

    metrics.clear_metrics()  # a fresh container: nothing buffered from other tests

    event = envelope(
        {"crawlerName": CRAWLER, "state": "Failed", "errorMessage": "boom"},
        "Glue Crawler State Change",
    )
    event["source"] = "aws.glue"
    # When a crawler failure arrives
    result = handler(event, lambda_context)
    # Then it is reported, and the CrawlerFailed metric is emitted (EMF on stdout)
    assert result["status"] == "Failed"
    emitted = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("{") and '"_aws"' in line
    ]
    assert any(m.get("CrawlerFailed") == [1.0] or m.get("CrawlerFailed") == 1.0 for m in emitted)


@pytest.mark.parametrize("state", ["Started", "Stopping"])
def test_other_crawler_states_are_ignored(env, state):
    assert _state_event(env, state, "evt-x") is None

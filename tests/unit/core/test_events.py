"""Every event contract: its schema is valid, a complete detail passes, a broken one fails."""

import json

import pytest

from lakegov.errors import RetryableError
from lakegov.events import (
    DETAIL_TYPES,
    Event,
    EventContractError,
    EventPublisher,
    validate_detail,
)
from lakegov.jsonschemas import SCHEMA_DIR, load_schema

NOW = "2026-11-21T10:00:00.000Z"
VALID = {
    "FileConverted": {
        "bucket": "raw",
        "key": "mwaa/blog/partition_dt=2026-11-20/customers.json",
        "etag": "abc",
        "dataset": "mwaa/blog/customers",
        "table": "mwaa_blog_customers",
        "partition_values": {"partition_dt": "2026-11-20"},
        "output_bucket": "formatted",
        "output_keys": ["formatted_stg/mwaa_blog_customers/partition_dt=2026-11-20/part-0.parquet"],
        "rows": 10,
        "schema_fingerprint": "0123456789abcdef",
        "converted_at": NOW,
    },
    "FileRejected": {
        "bucket": "raw",
        "key": "a/b.csv",
        "reason_code": "empty",
        "reason": "the file is empty",
        "rejected_at": NOW,
    },
    "SchemaChanged": {
        "dataset": "a/b",
        "table": "a_b",
        "change": "additive",
        "action": "applied",
        "added": [{"name": "c", "type": "string"}],
        "detected_at": NOW,
    },
    "DatasetRefreshed": {
        "dataset": "a/b",
        "database": "db",
        "table": "a_b",
        "refreshed_at": NOW,
        "partitions": [{"dt": "2026-11-20"}],
    },
    "ProductRunStarted": {"product": "cards", "run_id": "r1", "runner": "local", "started_at": NOW},
    "ProductRunFinished": {
        "product": "cards",
        "run_id": "r1",
        "runner": "local",
        "status": "SUCCEEDED",
        "finished_at": NOW,
    },
    "GovernanceApplied": {
        "document": {"bucket": "cfg", "key": "governance/a.json"},
        "changes": 3,
        "applied_at": NOW,
    },
    "GovernanceRejected": {
        "document": {"bucket": "cfg", "key": "governance/a.json"},
        "errors": [{"path": "$[0].role_arn", "message": "not an ARN"}],
        "rejected_at": NOW,
    },
    "DriftDetected": {
        "documents": ["governance/a.json"],
        "differences": [{"missing": "grant"}],
        "detected_at": NOW,
    },
    "LineageRecorded": {
        "job": "product.customers_cards.mwaa_blog_cards",
        "dataset": "lakegov_dev_formatted.mwaa_blog_cards",
        "run_id": "0f8f3c59-7a0e-5d0c-9a37-4a1f7c2f5b10",
        "event_type": "COMPLETE",
        "event_time": NOW,
        "inputs": [{"namespace": "arn:aws:glue:us-east-1:123456789012", "name": "table/s/t"}],
        "outputs": [{"namespace": "s3://lake", "name": "formatted_stg/t"}],
        "lake_bucket": "lake",
        "lake_key": "lineage_events/run_date=2026-11-20/x-COMPLETE.parquet",
        "datazone": "posted",
    },
    "AccessGranted": {
        "consumer_account": "444400000001",
        "producer_account": "123456789012",
        "document": {"bucket": "cfg", "key": "subscriptions/marketing.json"},
        "grants": [
            {"database": "db", "table": "orders", "permissions": ["SELECT"], "grantable": []}
        ],
        "consumer_roles": ["arn:aws:iam::444400000001:role/analyst"],
        "granted_at": NOW,
    },
    "AccessRevoked": {
        "consumer_account": "444400000001",
        "producer_account": "123456789012",
        "document": {"bucket": "cfg", "key": "subscriptions/marketing.json"},
        "grants": [{"database": "db", "table": None, "permissions": ["SELECT", "DESCRIBE"]}],
        "revoked_at": NOW,
    },
    "AccessLinked": {
        "consumer_account": "444400000001",
        "producer_account": "123456789012",
        "action": "linked",
        "status": "DONE",
        "links": [{"database": "shared_db", "table": "orders", "change": "created"}],
        "reported_at": NOW,
    },
}


def test_there_is_a_schema_for_every_detail_type_and_nothing_else():
    files = {p.stem for p in (SCHEMA_DIR / "events").glob("*.json")}
    assert files == set(DETAIL_TYPES) == set(VALID)


@pytest.mark.parametrize("detail_type", DETAIL_TYPES)
def test_a_complete_detail_matches_its_contract(detail_type):
    load_schema(f"events/{detail_type}")  # the schema itself is valid Draft 2020-12
    validate_detail(detail_type, VALID[detail_type])


@pytest.mark.parametrize("detail_type", DETAIL_TYPES)
def test_a_detail_missing_a_required_field_is_refused(detail_type):
    required = load_schema(f"events/{detail_type}")["required"][0]
    broken = {k: v for k, v in VALID[detail_type].items() if k != required}
    with pytest.raises(EventContractError, match=required):
        validate_detail(detail_type, broken)


def test_an_unknown_detail_type_is_refused():
    with pytest.raises(EventContractError):
        validate_detail("SomethingHappened", {})


class FakeEvents:
    def __init__(self, fail=0):
        self.calls = []
        self.fail = fail

    def put_events(self, Entries):
        self.calls.append(Entries)
        return {
            "FailedEntryCount": self.fail,
            "Entries": [
                {"ErrorCode": "InternalFailure"} if self.fail else {"EventId": "1"} for _ in Entries
            ],
        }


def test_the_publisher_sends_valid_events_in_chunks_of_ten():
    client = FakeEvents()
    publisher = EventPublisher(client, ("bus",))
    for _ in range(12):
        publisher.publish("DatasetRefreshed", VALID["DatasetRefreshed"])
    publisher.publish_all([])
    assert sum(len(c) for c in client.calls) == 12
    entry = client.calls[0][0]
    assert entry["Source"] == "lakegov" and entry["EventBusName"] == "bus"
    assert json.loads(entry["Detail"])["table"] == "a_b"


def test_the_publisher_refuses_an_invalid_detail_before_calling_aws():
    client = FakeEvents()
    with pytest.raises(EventContractError):
        EventPublisher(client, ("bus",)).publish("FileRejected", {"bucket": "raw"})
    assert client.calls == []


def test_failed_entries_are_retryable():
    with pytest.raises(RetryableError):
        EventPublisher(FakeEvents(fail=1), ("bus",)).publish(
            "DatasetRefreshed", VALID["DatasetRefreshed"]
        )


class FlakyEvents:
    """Fails the entries whose detail names a table in ``failing``, ``times`` calls each."""

    def __init__(self, failing, times=1):
        self.calls = []
        self.failing = dict.fromkeys(failing, times)

    def put_events(self, Entries):
        self.calls.append([json.loads(e["Detail"])["table"] for e in Entries])
        results = []
        for entry in Entries:
            table = json.loads(entry["Detail"])["table"]
            if self.failing.get(table, 0) > 0:
                self.failing[table] -= 1
                results.append({"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"})
            else:
                results.append({"EventId": table})
        failed = sum(1 for r in results if "ErrorCode" in r)
        return {"FailedEntryCount": failed, "Entries": results}


def _refreshed(table):
    return Event("DatasetRefreshed", {**VALID["DatasetRefreshed"], "table": table})


def test_events_of_one_invocation_share_calls_and_only_failed_entries_are_sent_again():
    client = FlakyEvents(failing=["t3"], times=1)
    publisher = EventPublisher(client, ("bus",), record=True)
    failed = publisher.publish_each([_refreshed(f"t{i}") for i in range(12)])
    assert failed == []
    # 12 events: a call of 10 and one of 2, then t3 alone again (not the nine that went)
    assert client.calls == [[f"t{i}" for i in range(10)], ["t3"], ["t10", "t11"]]
    assert [e.detail["table"] for e in publisher.published] == [f"t{i}" for i in range(12)]


def test_an_event_failing_every_attempt_is_handed_back_and_the_others_are_published():
    client = FlakyEvents(failing=["t1"], times=99)
    publisher = EventPublisher(client, ("bus",), record=True, attempts=3)
    failed = publisher.publish_each([_refreshed("t0"), _refreshed("t1"), _refreshed("t2")])
    assert [e.detail["table"] for e in failed] == ["t1"]
    assert client.calls == [["t0", "t1", "t2"], ["t1"], ["t1"]]
    assert [e.detail["table"] for e in publisher.published] == ["t0", "t2"]
    with pytest.raises(RetryableError, match="DatasetRefreshed"):
        publisher.publish_all([_refreshed("t1")])


def test_calls_stay_under_the_256_kb_limit():
    client = FlakyEvents(failing=[])
    big = [
        Event(
            "DatasetRefreshed",
            {**VALID["DatasetRefreshed"], "table": f"t{i}", "pad": "x" * 100_000},
        )
        for i in range(5)
    ]
    assert EventPublisher(client, ("bus",)).publish_each(big) == []
    assert client.calls == [["t0", "t1"], ["t2", "t3"], ["t4"]]

"""The audit store on moto's DynamoDB, with the table as template.yaml declares it."""

import boto3
import pytest
from moto import mock_aws
from tests.conftest import ROOT, create_audit_table

from lakegov.audit import AuditStore
from lakegov.errors import RetryableError
from lakegov.local.template import Resolver, load_template


@pytest.fixture
def audit():
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        create_audit_table(ddb)
        clock = {"now": 1_000_000.0}
        store = AuditStore("audit", ddb, clock=lambda: clock["now"])
        store.clock = clock  # type: ignore[attr-defined]
        yield store


def test_a_unit_of_work_is_claimed_once_and_a_finished_one_is_a_duplicate(audit):
    first = audit.claim("file", "s3://raw/a.csv", "etag1", attributes={"size": 10})
    assert first.acquired and first.item["status"] == "RECEIVED"
    with pytest.raises(RetryableError, match="another worker"):
        audit.claim("file", "s3://raw/a.csv", "etag1")
    audit.record(
        "file", "s3://raw/a.csv", "etag1", "PROCESSED", attributes={"rows_out": 3, "ratio": 0.5}
    )
    again = audit.claim("file", "s3://raw/a.csv", "etag1")
    assert again.duplicate and again.item["status"] == "PROCESSED" and again.item["rows_out"] == 3


def test_a_crashed_workers_lease_expires_and_the_retry_takes_over(audit):
    audit.claim("file", "s3://raw/b.csv", "v1", lease_seconds=60)
    audit.clock["now"] += 61
    retry = audit.claim("file", "s3://raw/b.csv", "v1")
    assert retry.acquired
    item = audit.get("file", "s3://raw/b.csv", "v1")
    assert item["attempts"] == 2
    assert [h["status"] for h in item["history"]] == ["RECEIVED", "RECEIVED"]


def test_a_released_claim_can_be_retried_at_once(audit):
    audit.claim("file", "s3://raw/c.csv", "v1")
    audit.release("file", "s3://raw/c.csv", "v1", note="throttled")
    assert audit.claim("file", "s3://raw/c.csv", "v1").acquired


def test_timeline_and_recent_items(audit):
    audit.claim("file", "s3://raw/d.csv", "v1")
    audit.record("file", "s3://raw/d.csv", "v1", "REJECTED", note="empty file")
    audit.claim("file", "s3://raw/d.csv", "v2")
    versions = audit.versions("file", "s3://raw/d.csv")
    assert {v["version"] for v in versions} == {"v1", "v2"}
    rejected = next(v for v in versions if v["version"] == "v1")
    assert [h["status"] for h in rejected["history"]] == ["RECEIVED", "REJECTED"]
    assert rejected["history"][-1]["note"] == "empty file"
    assert audit.recent("file", limit=1)[0]["subject"] == "s3://raw/d.csv"


def test_the_resolver_reads_the_real_template():
    template = load_template(ROOT / "template.yaml")
    resolver = Resolver(template, stack="s", region="us-east-1", account="123456789012")
    assert resolver.condition("HostsCentralBus") is True
    assert resolver.condition("HasPowertoolsLayerArn") is False


def _item_bytes(item: dict) -> int:
    """An item's size as DynamoDB counts it, near enough: names plus JSON-encoded values."""
    import json

    return sum(len(k.encode()) + len(json.dumps(v, default=str).encode()) for k, v in item.items())


def test_an_item_recorded_many_times_keeps_a_bounded_history(audit):
    from lakegov.audit import HISTORY_KEEP, HISTORY_LIMIT

    note = "x" * 400
    for i in range(HISTORY_LIMIT * 4 + 7):
        audit.record("dataset", "t", "schema", "CURRENT", note=f"{i} {note}")
    item = audit.get("dataset", "t", "schema")
    assert HISTORY_KEEP <= len(item["history"]) <= HISTORY_LIMIT
    assert item["history"][-1]["note"].startswith(f"{HISTORY_LIMIT * 4 + 6} ")  # the latest
    assert item["history_dropped"] + len(item["history"]) == HISTORY_LIMIT * 4 + 7
    assert _item_bytes(item) < 40_000


def test_retries_keep_the_history_bounded_too(audit):
    from lakegov.audit import HISTORY_LIMIT

    for _ in range(HISTORY_LIMIT + 5):
        audit.claim("file", "s3://raw/e.csv", "v1", lease_seconds=1)
        audit.clock["now"] += 2
    item = audit.get("file", "s3://raw/e.csv", "v1")
    assert len(item["history"]) <= HISTORY_LIMIT
    assert item["attempts"] == HISTORY_LIMIT + 5


def test_outcomes_expire_after_the_retention_and_state_is_kept(audit):
    audit.claim("file", "s3://raw/f.csv", "v1")
    audit.record("file", "s3://raw/f.csv", "v1", "PROCESSED")
    audit.record("dataset", "t", "schema", "CURRENT", attributes={"columns": []})
    expires = audit.get("file", "s3://raw/f.csv", "v1")["expires_at"]
    assert expires == int(audit.clock["now"]) + audit.retention_days * 86400
    assert "expires_at" not in audit.get("dataset", "t", "schema")
    # the drift check reads the governance documents in force from these, however old
    audit.claim("metadata", "s3://cfg/governance/a.json", "v1")
    audit.record("metadata", "s3://cfg/governance/a.json", "v1", "APPLIED")
    assert "expires_at" not in audit.get("metadata", "s3://cfg/governance/a.json", "v1")


def test_the_ttl_attribute_is_the_one_the_template_declares():
    from lakegov.audit import TTL_ATTRIBUTE

    props = load_template(ROOT / "template.yaml")["Resources"]["AuditTable"]["Properties"]
    assert props["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}


class CountingDynamoDB:
    """The moto client, counting the calls made through it by operation."""

    def __init__(self, client):
        self._client, self.calls = client, []

    def __getattr__(self, name):
        method = getattr(self._client, name)

        def call(**kwargs):
            self.calls.append(name)
            return method(**kwargs)

        return call


def test_a_claim_costs_one_write_and_its_duplicate_one_refused_write(audit):
    counting = CountingDynamoDB(audit._ddb)
    audit._ddb = counting
    # new work: one conditional put, nothing read
    assert audit.claim("file", "s3://raw/g.csv", "v1").acquired
    assert counting.calls == ["put_item"]
    # a concurrent delivery: refused, the holder's item comes back with the refusal
    counting.calls.clear()
    with pytest.raises(RetryableError, match="another worker"):
        audit.claim("file", "s3://raw/g.csv", "v1")
    assert counting.calls == ["put_item"]
    # a finished one: a duplicate, told by the same refused write
    audit.record("file", "s3://raw/g.csv", "v1", "PROCESSED")
    counting.calls.clear()
    duplicate = audit.claim("file", "s3://raw/g.csv", "v1")
    assert duplicate.duplicate and duplicate.item["status"] == "PROCESSED"
    assert counting.calls == ["put_item"]


def test_two_retries_taking_over_one_expired_lease_cannot_both_win(audit):
    audit.claim("file", "s3://raw/h.csv", "v1", lease_seconds=60)
    audit.clock["now"] += 61
    # the second retry read the expired item before the first took it over
    stale = audit.get("file", "s3://raw/h.csv", "v1")
    assert audit.claim("file", "s3://raw/h.csv", "v1").acquired
    original = audit._put_if
    calls = []

    def first_sees_the_stale_item(plain, condition, **kwargs):
        calls.append(condition)
        if len(calls) == 1:
            return stale  # as if the refusal had carried the item before the takeover
        return original(plain, condition, **kwargs)

    audit._put_if = first_sees_the_stale_item
    with pytest.raises(RetryableError, match="another worker"):
        audit.claim("file", "s3://raw/h.csv", "v1")
    assert len(calls) == 2 and "lease_until < :now" in calls[1]
    assert audit.get("file", "s3://raw/h.csv", "v1")["attempts"] == 2


def test_several_items_are_read_in_one_call_and_unprocessed_keys_are_asked_again(audit):
    audit.record("dataset", "orders", "schema", "CURRENT", attributes={"fingerprint": "f1"})
    audit.claim("file", "s3://raw/i.csv", "")
    counting = CountingDynamoDB(audit._ddb)
    audit._ddb = counting
    keys = [("dataset", "orders", "schema"), ("file", "s3://raw/i.csv", ""), ("x", "none", "v")]
    found = audit.get_many(keys)
    assert counting.calls == ["batch_get_item"]
    assert set(found) == set(keys[:2])  # the missing one is absent
    assert found[keys[0]]["fingerprint"] == "f1" and found[keys[1]]["status"] == "RECEIVED"
    # DynamoDB may leave keys unprocessed (throttling): they are asked for again
    real = counting._client.batch_get_item
    answers = []

    def partial(RequestItems):
        answers.append(len(RequestItems["audit"]["Keys"]))
        if len(answers) == 1:
            first, *rest = RequestItems["audit"]["Keys"]
            response = real(RequestItems={"audit": {**RequestItems["audit"], "Keys": [first]}})
            response["UnprocessedKeys"] = {"audit": {"Keys": rest}}
            return response
        return real(RequestItems=RequestItems)

    audit._ddb = type("Partial", (), {"batch_get_item": staticmethod(partial)})()
    assert audit.get_many(keys) == found
    assert answers == [3, 2]

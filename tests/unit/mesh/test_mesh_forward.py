"""Producers' dataset events are re-published on the central bus, contract intact.

The forwarding function reads them from its queue: each test feeds the events as the
bodies of queue messages, as the rule queues them.
"""

import json
import math

import pytest
from botocore.exceptions import ClientError
from tests.conftest import RefusingEvents

from lakegov.events import EventPublisher
from lakegov.mesh.forward import Outcome, forward_messages

CENTRAL = "arn:aws:events:us-east-1:123456789012:event-bus/central"


class RecordingEvents:
    def __init__(self):
        self.entries = []

    def put_events(self, Entries):
        self.entries.extend(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "x"} for _ in Entries]}


def _forward(publisher, *events, producer_account=""):
    """Each event as the body of one queue message -> the outcome of each, in order."""
    messages = [(f"m-{i}", json.dumps(e)) for i, e in enumerate(events)]
    outcomes = forward_messages(messages, publisher, producer_account=producer_account)
    return [outcomes[message_id] for message_id, _ in messages]


def _event(detail_type="DatasetRefreshed", **detail):
    return {
        "version": "0",
        "id": "e-1",
        "source": "lakegov",
        "detail-type": detail_type,
        "account": "222222222222",
        "region": "us-east-1",
        "time": "2026-11-20T10:00:00Z",
        "resources": ["arn:aws:glue:us-east-1:222222222222:table/db/t"],
        "detail": {
            "dataset": "sales/orders",
            "database": "db",
            "table": "t",
            "refreshed_at": "2026-11-20T10:00:00.000Z",
            **detail,
        },
    }


def test_a_refresh_is_put_on_the_central_bus_with_its_producer_account():
    events = RecordingEvents()
    (result,) = _forward(EventPublisher(events, (CENTRAL,)), _event())
    (entry,) = events.entries
    assert entry["EventBusName"] == CENTRAL
    assert (entry["Source"], entry["DetailType"]) == ("lakegov", "DatasetRefreshed")
    detail = json.loads(entry["Detail"])
    assert detail["dataset"] == "sales/orders" and detail["producer_account"] == "222222222222"
    assert entry["Resources"] == ["arn:aws:glue:us-east-1:222222222222:table/db/t"]
    assert result.status == "FORWARDED"
    assert result.detail_type == "DatasetRefreshed" and list(result.to) == [CENTRAL]


def test_the_deployment_account_is_the_producer_account_when_given():
    events = RecordingEvents()
    event = {k: v for k, v in _event().items() if k != "account"}
    _forward(EventPublisher(events, (CENTRAL,)), event, producer_account="444444444444")
    assert json.loads(events.entries[0]["Detail"])["producer_account"] == "444444444444"


def test_a_producer_account_set_by_the_producer_is_kept():
    events = RecordingEvents()
    _forward(EventPublisher(events, (CENTRAL,)), _event(producer_account="999999999999"))
    assert json.loads(events.entries[0]["Detail"])["producer_account"] == "999999999999"


@pytest.mark.parametrize(
    "event",
    [
        {**_event(), "source": "someone.else"},
        _event(detail_type="FileConverted"),
    ],
)
def test_other_events_are_not_forwarded(event):
    events = RecordingEvents()
    (result,) = _forward(EventPublisher(events, (CENTRAL,)), event)
    # dropped with the reason, not retried (no delivery could change it)
    assert result.status == "DROPPED" and "not a forwarded event" in result.reason
    assert events.entries == []


def test_a_detail_breaking_its_contract_is_not_forwarded():
    events = RecordingEvents()
    broken = _event()
    del broken["detail"]["table"]
    (result,) = _forward(EventPublisher(events, (CENTRAL,)), broken)
    assert result.status == "DROPPED" and "breaks its contract" in result.reason
    assert "table" in result.reason
    assert events.entries == []


def test_lineage_is_forwarded_with_the_dataset_subscriptions_filter_on():
    # Given a LineageRecorded of a product's model on the producer's service bus
    events = RecordingEvents()
    lineage = {
        **_event(detail_type="LineageRecorded"),
        "detail": {
            "job": "product.customers_cards.mwaa_blog_cards",
            "dataset": "lakegov_dev_formatted.mwaa_blog_cards",
            "run_id": "0f8f3c59-7a0e-5d0c-9a37-4a1f7c2f5b10",
            "event_type": "COMPLETE",
            "event_time": "2026-11-20T10:00:00Z",
            "inputs": [{"namespace": "arn:aws:glue:us-east-1:222222222222", "name": "table/s/t"}],
            "outputs": [
                {
                    "namespace": "arn:aws:glue:us-east-1:222222222222",
                    "name": "table/lakegov_dev_formatted/mwaa_blog_cards",
                }
            ],
            "lake_bucket": "lake",
            "lake_key": "lineage_events/run_date=2026-11-20/x.parquet",
            "datazone": "skipped: not configured",
        },
    }
    # When it is forwarded
    (result,) = _forward(EventPublisher(events, (CENTRAL,)), lineage)
    # Then it reaches the central bus, contract intact, with its producer account
    (entry,) = events.entries
    assert (entry["DetailType"], result.detail_type) == ("LineageRecorded", "LineageRecorded")
    detail = json.loads(entry["Detail"])
    assert detail["dataset"] == "lakegov_dev_formatted.mwaa_blog_cards"
    assert detail["producer_account"] == "222222222222"


class CountingEvents(RecordingEvents):
    """Keeps every PutEvents call's entries (RecordingEvents keeps them all in one list)."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def put_events(self, Entries):
        self.calls.append(len(Entries))
        return super().put_events(Entries)


def _refreshes(n):
    return [{**_event(table=f"t{i}"), "id": f"e-{i}"} for i in range(n)]


@pytest.mark.parametrize("n", [1, 10, 11, 23])
def test_a_batch_of_events_shares_put_events_calls(n):
    # Given n refreshes queued for the forwarder
    events = CountingEvents()
    # When they are forwarded as one batch
    results = _forward(EventPublisher(events, (CENTRAL,)), *_refreshes(n))
    # Then every one is on the central bus, ten to a PutEvents call
    assert [r.status for r in results] == ["FORWARDED"] * n
    assert len(events.calls) == math.ceil(n / 10) and sum(events.calls) == n
    tables = sorted(json.loads(e["Detail"])["table"] for e in events.entries)
    assert tables == sorted(f"t{i}" for i in range(n))


def test_a_copy_the_bus_refuses_fails_its_own_message_only():
    # Given a central bus that refuses one entry of the batch on every attempt
    sent = CountingEvents()
    bus = RefusingEvents(sent, marker='"table":"t3"', times=EventPublisher(sent, ()).attempts)
    # When a batch of five is forwarded
    results = _forward(EventPublisher(bus, (CENTRAL,)), *_refreshes(5))
    # Then that message alone is failed (for SQS to deliver again), the others are forwarded
    assert [type(r).__name__ for r in results] == ["Outcome"] * 3 + ["RetryableError", "Outcome"]
    assert "refused the DatasetRefreshed of event e-3" in str(results[3])
    # and only the refused entry was sent again: the others reached the bus once
    assert bus.calls == [5, 1, 1]
    assert sorted(json.loads(e["Detail"])["table"] for e in sent.entries) == [
        "t0",
        "t1",
        "t2",
        "t4",
    ]


def test_a_copy_refused_once_goes_through_on_the_publishers_resend():
    sent = CountingEvents()
    bus = RefusingEvents(sent, marker='"table":"t1"', times=1)
    results = _forward(EventPublisher(bus, (CENTRAL,)), *_refreshes(3))
    assert all(isinstance(r, Outcome) and r.status == "FORWARDED" for r in results)
    assert bus.calls == [3, 1] and len(sent.entries) == 3


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "the body is not JSON"),
        (json.dumps(["a", "list"]), "has no source, detail-type and detail"),
        (json.dumps({"hello": "world"}), "has no source, detail-type and detail"),
        (
            json.dumps({"source": "lakegov", "detail-type": "DatasetRefreshed", "detail": "x"}),
            "its detail is not an object",
        ),
        (
            json.dumps(
                {
                    "source": "lakegov",
                    "detail-type": "DatasetRefreshed",
                    "detail": {},
                    "resources": "arn:aws:glue:x",
                }
            ),
            "its resources are not a list of ARNs",
        ),
    ],
)
def test_a_message_that_is_not_an_eventbridge_event_is_dropped_with_a_logged_reason(
    body, reason, caplog
):
    # Given a batch with a malformed message between two refreshes
    events = CountingEvents()
    good = [json.dumps(e) for e in _refreshes(2)]
    messages = [("m-0", good[0]), ("bad", body), ("m-1", good[1])]
    # When it is forwarded
    outcomes = forward_messages(messages, EventPublisher(events, (CENTRAL,)))
    # Then the malformed message is dropped with the reason (not failed: not retried)
    assert outcomes["bad"] == Outcome("DROPPED", reason=outcomes["bad"].reason)
    assert "not an EventBridge event" in outcomes["bad"].reason
    assert reason in outcomes["bad"].reason
    # and the log says which message and why
    (logged,) = [r for r in caplog.records if getattr(r, "message_id", None) == "bad"]
    assert logged.levelname == "ERROR" and reason in logged.reason
    # while the good ones are forwarded in one call
    assert [outcomes["m-0"].status, outcomes["m-1"].status] == ["FORWARDED", "FORWARDED"]
    assert events.calls == [2]


def test_a_copy_over_the_size_limit_is_dropped_alone():
    # Given a refresh whose detail, with the producer account added, is over the limit
    events = CountingEvents()
    big = _event(source_files=["s3://raw/" + "x" * 1000 for _ in range(260)])
    # When it is forwarded with another refresh
    big_result, other = _forward(EventPublisher(events, (CENTRAL,)), big, _refreshes(1)[0])
    # Then it is dropped with the reason, and the other one is forwarded all the same
    assert big_result.status == "DROPPED" and "over the limit" in big_result.reason
    assert other.status == "FORWARDED" and events.calls == [1]


class FailingCallEvents(CountingEvents):
    """Answers the first PutEvents call; every later call fails outright (as a call does
    once the client's own retries are spent)."""

    def put_events(self, Entries):
        if self.calls:
            self.calls.append(len(Entries))
            raise ClientError(
                {"Error": {"Code": "InternalException", "Message": "try later"}}, "PutEvents"
            )
        return super().put_events(Entries)


def test_a_call_failing_outright_fails_only_the_messages_it_carried():
    # Given a central bus whose second PutEvents call fails outright
    events = FailingCallEvents()
    # When fifteen refreshes are forwarded as one batch (a call of ten, then one of five)
    results = _forward(EventPublisher(events, (CENTRAL,)), *_refreshes(15))
    # Then the ten of the first call are forwarded and not failed (no second copy on retry)
    assert [r.status for r in results[:10]] == ["FORWARDED"] * 10
    # and only the five of the failed call fail, for SQS to deliver them again
    assert all(type(r).__name__ == "RetryableError" for r in results[10:])
    assert events.calls == [10, 5] and len(events.entries) == 10

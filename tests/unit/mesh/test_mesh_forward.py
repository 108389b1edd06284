"""Producers' dataset events are re-published on the central bus, contract intact."""

import json

import pytest

from lakegov.errors import PermanentError
from lakegov.events import EventContractError, EventPublisher
from lakegov.mesh.forward import forward_event

CENTRAL = "arn:aws:events:us-east-1:123456789012:event-bus/central"


class RecordingEvents:
    def __init__(self):
        self.entries = []

    def put_events(self, Entries):
        self.entries.extend(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "x"} for _ in Entries]}


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
    result = forward_event(_event(), EventPublisher(events, (CENTRAL,)))
    (entry,) = events.entries
    assert entry["EventBusName"] == CENTRAL
    assert (entry["Source"], entry["DetailType"]) == ("lakegov", "DatasetRefreshed")
    detail = json.loads(entry["Detail"])
    assert detail["dataset"] == "sales/orders" and detail["producer_account"] == "222222222222"
    assert entry["Resources"] == ["arn:aws:glue:us-east-1:222222222222:table/db/t"]
    assert result["forwarded"] == "DatasetRefreshed" and result["to"] == [CENTRAL]


def test_the_deployment_account_is_the_producer_account_when_given():
    events = RecordingEvents()
    event = {k: v for k, v in _event().items() if k != "account"}
    forward_event(event, EventPublisher(events, (CENTRAL,)), producer_account="444444444444")
    assert json.loads(events.entries[0]["Detail"])["producer_account"] == "444444444444"


def test_a_producer_account_set_by_the_producer_is_kept():
    events = RecordingEvents()
    forward_event(_event(producer_account="999999999999"), EventPublisher(events, (CENTRAL,)))
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
    with pytest.raises(PermanentError, match="not a forwarded event"):
        forward_event(event, EventPublisher(events, (CENTRAL,)))
    assert events.entries == []


def test_a_detail_breaking_its_contract_is_not_forwarded():
    events = RecordingEvents()
    broken = _event()
    del broken["detail"]["table"]
    with pytest.raises(EventContractError):
        forward_event(broken, EventPublisher(events, (CENTRAL,)))
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
    result = forward_event(lineage, EventPublisher(events, (CENTRAL,)))
    # Then it reaches the central bus, contract intact, with its producer account
    (entry,) = events.entries
    assert (entry["DetailType"], result["forwarded"]) == ("LineageRecorded", "LineageRecorded")
    detail = json.loads(entry["Detail"])
    assert detail["dataset"] == "lakegov_dev_formatted.mwaa_blog_cards"
    assert detail["producer_account"] == "222222222222"

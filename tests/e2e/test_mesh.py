"""The mesh on the embedded runtime: a refresh reaches exactly the subscribed domain.

The service stack (template.yaml) hosts the central bus; consumer domains are the real
templates/domain.yaml deployed in other account ids. Subscriptions go through
the config bucket and the config function, refreshes through the service bus and the
forwarding function, deliveries across accounts to each domain's queue.
"""

import json
import time

import pytest
from tests.conftest import ROOT

from lakegov.events import Event, EventPublisher, utc_now
from lakegov.local.domains import deploy_domain
from lakegov.local.runtime import LocalRuntime
from lakegov.mesh.subscriptions import subscription_kind

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("runtime")]

# Each test deploys its own domains (own names, own account ids) and subscriptions, so the
# tests hold in any order and on any worker.
PRODUCERS = "222222222222,333333333333"


@pytest.fixture(scope="module")
def runtime():
    with LocalRuntime(
        ROOT / "template.yaml", stack_name="mesh", parameters={"ProducerAccountIds": PRODUCERS}
    ) as rt:
        # The config function learns the subscriptions/ kind here until the registry has it.
        import handlers.config

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(
                handlers.config,
                "metadata_kinds",
                lambda: {"subscriptions/": subscription_kind()},
            )
            yield rt


_ACCOUNTS = iter(f"{n:012d}" for n in range(444400000001, 444400009999))


def _domain(runtime, name):
    return deploy_domain(runtime, name, next(_ACCOUNTS))


def _subscribe(runtime, domain, datasets):
    key = f"subscriptions/{domain.name}.json"
    _upload(runtime, key, domain.subscription(datasets))
    return key


def _upload(runtime, key, document):
    runtime.client("s3").put_object(
        Bucket=runtime.outputs["ConfigBucketName"], Key=key, Body=json.dumps(document).encode()
    )


def _delete(runtime, key):
    """Delete a document: the config bucket is versioned, so S3 leaves a delete marker and
    sends "Object Deleted", which reaches the config function as on AWS; what that
    invocation returned."""
    before = len(runtime.invocations)
    runtime.client("s3").delete_object(Bucket=runtime.outputs["ConfigBucketName"], Key=key)
    runtime.wait_idle(timeout=120)
    (invocation,) = [i for i in runtime.invocations[before:] if i.function == "ConfigFunction"]
    assert invocation.ok, invocation.error
    return invocation.result


def _result(runtime, key):
    body = runtime.client("s3").get_object(
        Bucket=runtime.outputs["ConfigBucketName"], Key=f"results/{key}.result.json"
    )["Body"]
    return json.loads(body.read())


def _refresh(runtime, dataset, bus=None):
    """A DatasetRefreshed as a producer function publishes it (service bus by default)."""
    publisher = EventPublisher(
        runtime.client("events"), (bus or runtime.outputs["ServiceEventBusName"],)
    )
    publisher.publish(
        "DatasetRefreshed",
        {
            "dataset": dataset,
            "database": "lakegov_dev_formatted",
            "table": dataset.replace("/", "_"),
            "refreshed_at": utc_now(),
        },
    )


def _received(domain, expected, timeout=20.0):
    """Datasets the domain's queue received, waiting until ``expected`` many arrived."""
    got, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        got += domain.receive()
        if len(got) >= expected:
            break
        time.sleep(0.2)
    return sorted(e["detail"]["dataset"] for e in got)


def _applied(runtime, key):
    return runtime.wait_for_event(
        "GovernanceApplied", lambda d: d["document"]["key"] == key, timeout=30
    )


def test_the_domain_template_deploys_with_a_bus_open_to_the_central_account_only(runtime):
    domain = _domain(runtime, "templated")
    assert domain.bus_arn == (
        f"arn:aws:events:us-east-1:{domain.account}:event-bus/lakegov-domain-templated"
    )
    bus = domain.client("events").describe_event_bus(Name="lakegov-domain-templated")
    (statement,) = json.loads(bus["Policy"])["Statement"]
    assert statement["Principal"] == {"AWS": f"arn:aws:iam::{runtime.account}:root"}
    assert statement["Action"] == "events:PutEvents"
    document = domain.subscription(["sales/*"])
    assert document["account_id"] == domain.account
    assert document["event_bus_arn"] == domain.bus_arn


def test_a_refresh_reaches_exactly_the_subscribed_domain(runtime):
    marketing, finance = _domain(runtime, "marketing"), _domain(runtime, "finance")
    # Given marketing subscribes to sales/* and finance to finance/*, through the config bucket
    _applied(runtime, _subscribe(runtime, marketing, ["sales/*"]))
    _applied(runtime, _subscribe(runtime, finance, ["finance/*"]))
    assert _result(runtime, "subscriptions/marketing.json")["status"] == "APPLIED"
    # When producers refresh datasets (published on the service bus, forwarded centrally)
    for dataset in ["sales/eu", "hr/people", "finance/ledger", "sales/us"]:
        _refresh(runtime, dataset)
    # Then each domain's queue holds exactly its datasets, delivered across accounts
    assert _received(marketing, 2) == ["sales/eu", "sales/us"]
    assert _received(finance, 1) == ["finance/ledger"]
    runtime.wait_idle(timeout=30)
    assert marketing.receive() == [] and finance.receive() == []
    # and the forwarded copies went through the central bus, with the producer's account
    central = runtime.outputs["CentralEventBusArn"].rsplit("/", 1)[1]
    _refresh(runtime, "sales/apac")
    event = runtime.wait_for_event(
        "DatasetRefreshed", lambda d: d["dataset"] == "sales/apac", bus=central, timeout=20
    )
    assert event["detail"]["producer_account"] == runtime.account
    assert _received(marketing, 1) == ["sales/apac"]


def test_a_burst_of_refreshes_is_forwarded_in_batches_from_the_forward_queue(runtime):
    # Given a domain subscribed to burst/*
    burst = _domain(runtime, "burst")
    _applied(runtime, _subscribe(runtime, burst, ["burst/*"]))
    runtime.wait_idle(timeout=30)
    before = len(runtime.invocations)
    # When a producer refreshes twelve datasets at once on the service bus
    datasets = [f"burst/d{i:02d}" for i in range(12)]
    publisher = EventPublisher(runtime.client("events"), (runtime.outputs["ServiceEventBusName"],))
    publisher.publish_all(
        Event(
            "DatasetRefreshed",
            {
                "dataset": d,
                "database": "db",
                "table": d.replace("/", "_"),
                "refreshed_at": utc_now(),
            },
        )
        for d in datasets
    )
    # Then each reaches the subscribed domain once, with the producer's account
    assert _received(burst, 12) == datasets
    runtime.wait_idle(timeout=30)
    assert burst.receive() == []
    central = runtime.outputs["CentralEventBusArn"].rsplit("/", 1)[1]
    forwarded = [
        e
        for e in runtime.events_of("DatasetRefreshed", bus=central)
        if e["detail"]["dataset"] in datasets
    ]
    assert sorted(e["detail"]["dataset"] for e in forwarded) == datasets
    assert {e["detail"]["producer_account"] for e in forwarded} == {runtime.account}
    # through the forward queue's SQS event source, several events to an invocation
    forwards = [i for i in runtime.invocations[before:] if i.function == "MeshForwardFunction"]
    assert forwards and all(i.ok and i.failed_items == 0 for i in forwards)
    assert {i.source for i in forwards} == {"sqs:DatasetEvents"}
    assert len(forwards) < len(datasets)


def test_a_message_on_the_forward_queue_that_is_no_event_is_dropped_not_retried(runtime):
    # Given a message the rule would never queue (the queue policy admits the rule only;
    # moto does not enforce it, so the message can be sent here)
    sqs = runtime.client("sqs")
    queue = sqs.get_queue_url(QueueName="mesh-MeshForwardQueue")["QueueUrl"]
    dead_letter = sqs.get_queue_url(QueueName="mesh-MeshForwardDeadLetterQueue")["QueueUrl"]
    before = len(runtime.invocations)
    sqs.send_message(QueueUrl=queue, MessageBody="not an event")
    # When the forwarder has read it
    runtime.wait_idle(timeout=30)
    # Then it was handled once, dropped (not failed), and is neither queued nor dead-lettered
    forwards = [i for i in runtime.invocations[before:] if i.function == "MeshForwardFunction"]
    assert [(i.ok, i.failed_items) for i in forwards] == [(True, 0)]
    for url in (queue, dead_letter):
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        assert set(attributes.values()) == {"0"}, url


def test_an_event_put_directly_on_the_central_bus_is_delivered_too(runtime):
    direct, other = _domain(runtime, "direct"), _domain(runtime, "other")
    _applied(runtime, _subscribe(runtime, direct, ["direct/*"]))
    _applied(runtime, _subscribe(runtime, other, ["other/*"]))
    _refresh(runtime, "direct/orders", bus=runtime.outputs["CentralEventBusArn"])
    assert _received(direct, 1) == ["direct/orders"]
    assert _received(other, 0, timeout=1) == []


def test_an_update_narrows_and_a_deletion_unsubscribes(runtime):
    narrow, bystander = _domain(runtime, "narrow"), _domain(runtime, "bystander")
    key = _subscribe(runtime, narrow, ["north/*"])
    broad = _applied(runtime, key)["detail"]["document"]
    _applied(runtime, _subscribe(runtime, bystander, ["south/*"]))
    # When the domain narrows its subscription to one exact dataset
    _subscribe(runtime, narrow, ["north/eu"])
    runtime.wait_for_event(  # this upload's outcome (the broad one's may have 1 change too)
        "GovernanceApplied",
        lambda d: d["document"]["key"] == key and d["document"] != broad and d["changes"] == 1,
        timeout=30,
    )
    _refresh(runtime, "north/us")
    _refresh(runtime, "north/eu")
    assert _received(narrow, 1) == ["north/eu"]
    # When the document is deleted, the domain receives nothing more; the other one still does
    removed = _delete(runtime, key)
    assert removed["status"] == "REMOVED" and len(removed["summary"]["deleted"]) == 1
    assert _result(runtime, key)["status"] == "REMOVED"
    _refresh(runtime, "north/eu")
    _refresh(runtime, "south/fx")
    assert _received(bystander, 1) == ["south/fx"]
    runtime.wait_idle(timeout=30)
    assert narrow.receive() == []


def test_a_bad_subscription_is_refused_and_explained(runtime):
    bad = _domain(runtime, "greedy").subscription(["*"])
    _upload(runtime, "subscriptions/everything.json", bad)
    event = runtime.wait_for_event(
        "GovernanceRejected",
        lambda d: d["document"]["key"] == "subscriptions/everything.json",
        timeout=30,
    )
    assert event["detail"]["errors"][0]["path"] == "$.datasets[0]"
    result = _result(runtime, "subscriptions/everything.json")
    assert result["status"] == "REJECTED" and "allow_all_datasets" in result["errors"][0]["message"]

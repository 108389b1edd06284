"""Template-driven wiring: the events a function declares route to it, others nowhere."""

import importlib
import json
import os
import time

import pytest
from tests.conftest import ROOT

from lakegov.local import observer as observer_module
from lakegov.local.runtime import LocalRuntime

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("runtime")]

TEMPLATE = ROOT / "tests" / "fixtures" / "wiring" / "template.yaml"


@pytest.fixture(scope="module")
def runtime():
    with LocalRuntime(TEMPLATE, stack_name="wiring") as rt:
        yield rt


@pytest.fixture
def received(runtime):
    module = importlib.import_module("wiring_handlers")
    module.RECEIVED.clear()
    return module.RECEIVED


def _put(runtime, colour):
    runtime.client("events").put_events(
        Entries=[
            {
                "Source": "lakegov.test",
                "DetailType": "WidgetMade",
                "Detail": json.dumps({"colour": colour}),
                "EventBusName": runtime.outputs["BusName"],
            }
        ]
    )


def test_a_matching_event_reaches_the_function_in_its_environment(runtime, received):
    _put(runtime, "blue")
    runtime.wait_idle(timeout=30)
    (call,) = [r for r in received if r["function"] == "record"]
    assert call["event"]["detail"] == {"colour": "blue"}
    assert call["event"]["detail-type"] == "WidgetMade"
    assert call["flavour"] == "vanilla" and call["bus"] == "wiring-bus"
    assert 0 < call["remaining_ms"] <= 30_000


def test_a_non_matching_event_reaches_nothing(runtime, received):
    before = len(runtime.invocations)
    _put(runtime, "red")
    runtime.client("s3").put_object(
        Bucket=runtime.outputs["BucketName"], Key="elsewhere/x.csv", Body=b"1"
    )
    runtime.wait_idle(timeout=30)
    assert received == []
    assert len(runtime.invocations) == before


def test_s3_events_flow_through_the_declared_rule_and_queue_as_an_sqs_batch(runtime, received):
    runtime.client("s3").put_object(
        Bucket=runtime.outputs["BucketName"], Key="in/landed.csv", Body=b"1"
    )
    runtime.wait_idle(timeout=30)
    (call,) = [r for r in received if r["function"] == "batch"]
    assert call["key"] == "in/landed.csv"
    record = call["record"]
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"].endswith(":wiring-Queue")
    assert record["attributes"]["ApproximateReceiveCount"] == "1"


def test_a_poison_message_is_retried_then_dead_lettered_without_failing_its_neighbours(
    runtime, received
):
    s3 = runtime.client("s3")
    s3.put_object(Bucket=runtime.outputs["BucketName"], Key="in/poison.csv", Body=b"1")
    s3.put_object(Bucket=runtime.outputs["BucketName"], Key="in/fine.csv", Body=b"1")
    sqs = runtime.client("sqs")
    deadline = time.monotonic() + 30
    dead = []
    while time.monotonic() < deadline and not dead:
        dead = sqs.receive_message(QueueUrl=runtime.outputs["DeadLetterUrl"]).get("Messages", [])
        time.sleep(0.2)
    assert dead, "the poison message never reached the dead-letter queue"
    assert json.loads(dead[0]["Body"])["detail"]["object"]["key"] == "in/poison.csv"
    keys = [r["key"] for r in received if r["function"] == "batch"]
    assert keys.count("in/fine.csv") == 1  # delivered once, not re-run with the poison one
    assert keys.count("in/poison.csv") == 2  # maxReceiveCount: 2


def test_a_failing_event_is_retried_and_dead_lettered_alone_among_events_delivered_once(
    runtime, received
):
    # Given a burst of events for one function, one of which its handler fails on
    entries = [
        {
            "Source": "lakegov.test",
            "DetailType": "WidgetMade",
            "Detail": json.dumps({"colour": "poison" if n == 3 else "blue", "n": n}),
            "EventBusName": runtime.outputs["BusName"],
        }
        for n in range(8)
    ]
    # When they are put on the bus at once (received together from the function's inbox)
    runtime.client("events").put_events(Entries=entries)
    # Then the failing one is tried three times (1 + 2 retries) and dead-lettered, alone
    sqs = runtime.client("sqs")
    (dead_letters,) = [
        url
        for url in sqs.list_queues(QueueNamePrefix="wiring-RecordingFunction")["QueueUrls"]
        if url.endswith("-dlq")
    ]
    deadline = time.monotonic() + 60
    dead: list[dict] = []
    while time.monotonic() < deadline and not dead:
        dead = sqs.receive_message(QueueUrl=dead_letters, WaitTimeSeconds=1).get("Messages", [])
    assert [json.loads(m["Body"])["detail"]["n"] for m in dead] == [3]
    runtime.wait_idle(timeout=30)
    assert sqs.receive_message(QueueUrl=dead_letters).get("Messages", []) == []
    # and every other one was invoked exactly once: deleted, never handed out again
    calls = [r for r in received if r["function"] == "record"]
    delivered = sorted(r["event"]["detail"]["n"] for r in calls if not r.get("failed"))
    assert delivered == [0, 1, 2, 4, 5, 6, 7]
    assert [r["event"]["detail"]["n"] for r in calls if r.get("failed")] == [3, 3, 3]


def test_a_burst_on_a_queue_is_handled_once_per_message_and_leaves_nothing_in_flight(
    runtime, received
):
    # Given 200 messages sent to an SQS-sourced function's queue at once, while the function
    # runs batches on its threads (deletes of one batch meet the receive of the next)
    sqs = runtime.client("sqs")
    url = runtime.outputs["QueueUrl"]
    keys = [f"in/burst-{n}.csv" for n in range(200)]
    for start in range(0, len(keys), 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "MessageBody": json.dumps({"detail": {"object": {"key": key}}})}
                for i, key in enumerate(keys[start : start + 10])
            ],
        )
    # When the runtime has handled them
    runtime.wait_idle(timeout=120)
    # Then each message ran once, and each was deleted: none visible, none in flight
    handled = [r["key"] for r in received if r["function"] == "batch"]
    assert sorted(handled) == sorted(keys)
    counts = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert counts == {
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesNotVisible": "0",
    }


def test_the_observer_reads_a_busy_bus_many_events_per_receive_and_records_each_once(runtime):
    # Given the runtime's observer of the bus, and nobody waiting for an event
    sizes: list[int] = []

    def count(parsed, **_):
        bodies = [json.loads(m["Body"]) for m in parsed.get("Messages", [])]
        observed = sum(1 for b in bodies if b.get("detail-type") == "Counted")
        if observed:
            sizes.append(observed)

    sqs = runtime.client("sqs")  # the client the observer receives with
    sqs.meta.events.register("after-call.sqs.ReceiveMessage", count)
    try:
        # When 30 events reach the bus within a moment
        for first in range(0, 30, 10):
            runtime.client("events").put_events(
                Entries=[
                    {
                        "Source": "lakegov",
                        "DetailType": "Counted",
                        "Detail": json.dumps({"n": n}),
                        "EventBusName": runtime.outputs["BusName"],
                    }
                    for n in range(first, first + 10)
                ]
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(runtime.events_of("Counted")) < 30:
            time.sleep(0.2)
    finally:
        sqs.meta.events.unregister("after-call.sqs.ReceiveMessage", count)
    # Then each is recorded once, read in a few receives rather than one per event
    assert sorted(e["detail"]["n"] for e in runtime.events_of("Counted")) == list(range(30))
    assert sum(sizes) == 30 and len(sizes) <= 8, sizes


def test_waiting_for_an_event_is_answered_as_soon_as_it_arrives(runtime):
    # Given an observer that lets events gather when nobody waits
    put = runtime.client("events").put_events
    entry = {"Source": "lakegov", "EventBusName": runtime.outputs["BusName"], "Detail": "{}"}
    put(Entries=[{**entry, "DetailType": "Ready"}])
    runtime.wait_for_event("Ready", timeout=30)
    # When someone waits for an event that arrives after a first, lone one
    put(Entries=[{**entry, "DetailType": "Lone"}])
    started = time.monotonic()
    put(Entries=[{**entry, "DetailType": "Awaited"}])
    runtime.wait_for_event("Awaited", timeout=30)
    # Then it does not wait out the gathering pause behind the first one
    assert time.monotonic() - started < observer_module.OBSERVE_GATHER / 2
    assert runtime.events_of("Lone")


def test_outputs_are_written_with_the_endpoint(runtime, tmp_path):
    path = tmp_path / "outputs.json"
    runtime.write_outputs(path)
    outputs = json.loads(path.read_text())
    assert outputs["EndpointUrl"] == runtime.endpoint_url and outputs["Region"] == "us-east-1"
    assert outputs["BusName"] == "wiring-bus"
    assert outputs["QueueUrl"].startswith(runtime.endpoint_url)


def test_excluded_resources_are_not_created(runtime):
    buses = [b["Name"] for b in runtime.client("events").list_event_buses()["EventBuses"]]
    assert "never" not in buses and "wiring-bus" in buses


def test_stopping_ends_the_endpoint_process_even_when_stopping_a_function_fails(monkeypatch):
    rt = LocalRuntime(TEMPLATE, stack_name="wiring-stop").start()
    pid = rt.endpoint_pid
    assert pid is not None

    def broken() -> None:
        raise RuntimeError("stopping the state machines failed")

    monkeypatch.setattr(rt, "_stop_states", broken)
    with pytest.raises(RuntimeError, match="state machines"):
        rt.stop()

    assert rt.endpoint_pid is None
    with pytest.raises(ProcessLookupError):  # reaped: no such process any more
        os.kill(pid, 0)
    monkeypatch.undo()
    rt.stop()  # what the failure left: the state machines' listener


def test_a_chosen_port_another_listener_took_meanwhile_is_chosen_again():
    # Given a port the runtime chose, taken meanwhile by a listener that is not its endpoint
    import http.server
    import threading

    squatter = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=squatter.serve_forever, daemon=True).start()
    taken = squatter.server_address[1]
    rt = LocalRuntime(TEMPLATE, stack_name="wiring-port")
    rt.port, rt.endpoint_url = taken, f"http://127.0.0.1:{taken}"
    try:
        # When it starts, its endpoint cannot bind the port (the squatter answers there)
        with rt:
            # Then it runs on another port, and its stack was built on its own endpoint
            assert rt.port != taken and rt.endpoint_url.endswith(f":{rt.port}")
            buckets = [b["Name"] for b in rt.client("s3").list_buckets()["Buckets"]]
            assert rt.outputs["BucketName"] in buckets
    finally:
        squatter.shutdown()
        squatter.server_close()

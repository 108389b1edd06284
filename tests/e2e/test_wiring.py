"""Template-driven wiring: the events a function declares route to it, others nowhere."""

import importlib
import json
import os
import time

import pytest
from tests.conftest import ROOT

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

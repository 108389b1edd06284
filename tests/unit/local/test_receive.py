"""The dispatcher's receives for an SQS event source: what a batching window has received
is run even when a later receive of the window fails (not left hidden in flight)."""

from pathlib import Path

import pytest
from tests.conftest import ROOT

from lakegov.local import runtime as runtime_module
from lakegov.local.runtime import LocalRuntime
from lakegov.local.stack import FunctionSpec, Subscription

SUB = Subscription(
    function=FunctionSpec("Fn", "fn", "h.handler", Path("."), {}, 30),
    source="sqs",
    queue_url="http://127.0.0.1:1/123456789012/q",
    batch_size=10,
    batching_window=5,
)


class Queue:
    """Answers the first receive with three messages, then fails every later one."""

    def __init__(self):
        self.receives = 0

    def receive_message(self, **kwargs):
        self.receives += 1
        if self.receives == 1:
            return {"Messages": [{"MessageId": str(n), "ReceiptHandle": f"r{n}"} for n in range(3)]}
        raise ConnectionError("the endpoint went away")


def test_a_failed_receive_inside_the_batching_window_keeps_what_was_received(monkeypatch, caplog):
    monkeypatch.setattr(runtime_module, "BATCHING_STEP", 0.01)
    caplog.set_level("WARNING", logger="lakegov")
    rt = LocalRuntime(ROOT / "template.yaml")  # not started: only its dispatcher's receive
    sqs = Queue()
    messages = rt._receive(sqs, SUB, 1)
    assert [m["ReceiptHandle"] for m in messages] == ["r0", "r1", "r2"]
    assert sqs.receives == 2  # the window stopped at the failure, not waited out
    assert "dispatcher poll failed" in caplog.text


def test_a_failed_first_receive_raises_for_the_poll_loop_to_handle():
    sqs = Queue()
    sqs.receives = 1  # every receive fails
    with pytest.raises(ConnectionError):
        LocalRuntime(ROOT / "template.yaml")._receive(sqs, SUB, 1)

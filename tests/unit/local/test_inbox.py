"""The embedded runtime's inbox bookkeeping: delivered events are deleted ten per call, a
failed one is never deleted, and no receipt waits past a bound."""

from lakegov.local import runtime
from lakegov.local.runtime import _Inbox, delete_received

URL = "http://127.0.0.1:1/123456789012/fn-Events-in"


class Queue:
    """Records DeleteMessageBatch calls; refuses the receipts listed in ``refuse``."""

    def __init__(self, refuse=()):
        self.batches = []
        self.refuse = set(refuse)

    def delete_message_batch(self, QueueUrl, Entries):
        assert QueueUrl == URL
        assert 1 <= len(Entries) <= 10  # SQS's limit per call
        self.batches.append([e["ReceiptHandle"] for e in Entries])
        failed = [
            {"Id": e["Id"], "SenderFault": True, "Code": "ReceiptHandleIsInvalid"}
            for e in Entries
            if e["ReceiptHandle"] in self.refuse
        ]
        return {"Successful": [], "Failed": failed}


def test_delivered_events_are_deleted_ten_per_call_and_the_rest_when_none_is_left_running():
    sqs = Queue()
    inbox = _Inbox(sqs, URL)
    inbox.received(12)
    for n in range(12):
        inbox.settled(f"r{n}")
    assert sqs.batches == [[f"r{n}" for n in range(10)], ["r10", "r11"]]


def test_a_failed_event_is_left_to_come_back_while_the_others_of_its_receive_are_deleted():
    sqs = Queue()
    inbox = _Inbox(sqs, URL)
    inbox.received(3)
    inbox.settled("ok-1")
    inbox.settled(None)  # its invocation failed: backoff, then it is received again
    assert sqs.batches == []  # one event still running: the receipts wait for it
    inbox.settled("ok-2")
    assert sqs.batches == [["ok-1", "ok-2"]]


def test_a_receipt_waits_no_longer_than_the_bound_while_other_events_run(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(runtime.time, "monotonic", lambda: now[0])
    sqs = Queue()
    inbox = _Inbox(sqs, URL)
    inbox.received(3)
    inbox.settled("early")
    inbox.flush(older_than=runtime.DELETE_AFTER)
    assert sqs.batches == []  # two still running, and it has not waited long
    now[0] += runtime.DELETE_AFTER
    inbox.flush(older_than=runtime.DELETE_AFTER)  # the poller looks before each receive
    assert sqs.batches == [["early"]]
    now[0] += 0.1
    inbox.settled("late")  # a fresh receipt, another event still running: it waits
    assert sqs.batches == [["early"]]
    now[0] += runtime.DELETE_AFTER
    inbox.settled(None)  # the last one failed; the waiting receipt goes now
    assert sqs.batches == [["early"], ["late"]]


def test_events_abandoned_on_stop_are_not_deleted_and_release_the_others():
    sqs = Queue()
    inbox = _Inbox(sqs, URL)
    inbox.received(4)
    inbox.settled("done")
    inbox.abandoned(3)  # stopping: received, never started; SQS hands them out again
    assert sqs.batches == [["done"]]


def test_deleting_splits_into_calls_of_ten_and_reports_what_sqs_refused(caplog):
    sqs = Queue(refuse={"r3"})
    delete_received(sqs, URL, [f"r{n}" for n in range(23)])
    assert [len(b) for b in sqs.batches] == [10, 10, 3]
    assert "message not deleted" in caplog.text


def test_nothing_to_delete_makes_no_call():
    sqs = Queue()
    delete_received(sqs, URL, [])
    inbox = _Inbox(sqs, URL)
    inbox.flush()
    assert sqs.batches == []
